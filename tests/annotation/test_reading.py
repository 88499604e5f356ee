"""What annotators read: highlighted code, LaTeX kept as text for KaTeX, class attributes limited to the
ones the page needs, chat transcripts split at the final user turn, and the word-diff usefulness ratio."""

from __future__ import annotations

from annotation.ui.markdown import prompt_turns, render_markdown, shared_word_ratio, split_final_turn


def test_code_is_highlighted_and_still_escaped():
    html = render_markdown("```python\nprint('<script>x</script>')\n```")
    assert '<div class="codehilite">' in html
    assert '<span class="nb">print</span>' in html
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_only_known_class_names_survive():
    # A class smuggled through a fenced block's info string or anywhere else is dropped by nh3.
    html = render_markdown("```evil onmouseover=x\ncode\n```\n\n`$a$` text")
    assert "onmouseover" not in html.replace("onmouseover=x", "")  # never as an attribute
    for cls in ("evil",):
        assert f'class="{cls}' not in html


def test_math_is_escaped_text_in_math_spans():
    html = render_markdown(r"Inline $a_1 < b_2$ and display $$\frac{<b>1</b>}{2}$$ and \(x^2\).")
    assert '<span class="math">a_1 &lt; b_2</span>' in html  # no <em> from the underscores
    assert '<span class="math-display">\\frac{&lt;b&gt;1&lt;/b&gt;}{2}</span>' in html
    assert '<span class="math">x^2</span>' in html


def test_dollar_amounts_and_code_are_not_math():
    html = render_markdown("It costs $5 and $10. Code: `$PATH`")
    assert "math" not in html
    assert "<code>$PATH</code>" in html


def test_tables_render():
    html = render_markdown("| a | b |\n|---|---:|\n| 1 | 2 |")
    assert "<table>" in html and '<td style="text-align:right">2</td>' in html


def test_final_user_turn_is_split_from_history():
    turns = prompt_turns(
        "",
        [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": "What is 2+2?"},
        ],
    )
    earlier, final = split_final_turn(turns)
    assert [t["role"] for t in earlier] == ["system", "user", "assistant"]
    assert final == [{"role": "user", "label": "User", "content": "What is 2+2?"}]
    hh_earlier, hh_final = split_final_turn(prompt_turns("\n\nHuman: a\n\nAssistant: b\n\nHuman: c", None))
    assert [t["content"] for t in hh_final] == ["c"] and hh_final[0]["label"] == "Human"
    assert len(hh_earlier) == 2
    assert split_final_turn(prompt_turns("plain prompt", None)) == ([], prompt_turns("plain prompt", None))


def test_shared_word_ratio():
    assert shared_word_ratio("the cat sat on the mat", "the cat sat on the hat") > 0.8
    assert shared_word_ratio("completely different words here", "nothing alike at all") == 0
    assert shared_word_ratio("", "") == 1.0
