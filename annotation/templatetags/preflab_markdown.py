"""Template filter ``{{ text|safe_markdown }}``: Markdown rendered with raw HTML shown as text."""

from django import template

from annotation.ui.markdown import render_markdown

register = template.Library()


@register.filter(name="safe_markdown")
def safe_markdown(value):
    return render_markdown(value)
