"""The annotate page as a workspace, in headless Chromium: prefetched pairs and an outbox that survives the
server being away (and a reload), undo that brings the answer back, keyboard details, long content that
never breaks the layout at 1280 and 390 px, chat transcripts, highlighted code, tables, KaTeX, word diff
and dark mode. Outcomes are checked in the judgments table; no console errors (see conftest)."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect

from annotation.models import Judgment, Role
from tests.e2e.conftest import login
from tests.factories import add_member, make_project, make_prompt, make_task, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LONG_LINE = "x = [" + ", ".join(f"'item_{i:04d}'" for i in range(120)) + "]"
CODE_A = f"One line does it:\n\n```python\n{LONG_LINE}\nprint(len(x))\n```\n\nThen call `len`."
CODE_B = "Use a loop:\n\n```python\nx = []\nfor i in range(120):\n    x.append(i)\n```"
RICH_A = (
    "The area of a circle is $A = \\pi r^2$, so for $r = 2$:\n\n$$A = 4\\pi \\approx 12.57$$\n\n"
    "| radius | area |\n|---:|---:|\n| 1 | 3.14 |\n| 2 | 12.57 |\n\n"
    "```python\nimport math\n\ndef area(r: float) -> float:\n    return math.pi * r ** 2\n```"
)
RICH_B = (
    "The area is $A = 2\\pi r$ (that is the **circumference**, a common slip).\n\n"
    "```python\ndef area(r):\n    return 2 * 3.14 * r\n```"
)
# ask_strength off keeps the key sequences short where strength is not what a test is about.
SIMPLE = {"ask_strength": False, "undo_grace_seconds": 120}


def _setup(n_tasks: int = 3, **fields):
    annotator = make_user(Role.ANNOTATOR)
    project = make_project(**fields)
    add_member(project, annotator)
    tasks = [make_task(project, a=f"Answer A{i} " * 5, b=f"Answer B{i} " * 5) for i in range(n_tasks)]
    return annotator, project, tasks


def _open(page, annotator, project):
    login(page, annotator.username)
    page.goto(f"/projects/{project.pk}/annotate")
    expect(page.locator("#task-view")).to_have_attribute("data-upcoming", "1")  # next pair prefetched


def _shown(page) -> int:
    return int(page.locator("#judgment-form").get_attribute("data-task"))


def _all_sent(page) -> None:
    expect(page.locator("#send-status")).to_have_attribute("data-waiting", "0", timeout=45_000)


def _server_down(page) -> None:
    """The browser cannot reach the API nor the prefetch URL (the connection fails, as when offline)."""
    page.route("**/api/v1/**", lambda route: route.abort("connectionrefused"))
    page.route("**/annotate/next", lambda route: route.abort("connectionrefused"))


def _server_up(page) -> None:
    page.unroute("**/api/v1/**")
    page.unroute("**/annotate/next")


def _quiet_console(console_errors: list[str]) -> None:
    """Chromium logs each refused request as a console error; those are the point of the test."""
    console_errors[:] = [e for e in console_errors if "ERR_CONNECTION_REFUSED" not in e]


def test_answers_survive_server_outage_and_reload(page, console_errors):
    annotator, project, tasks = _setup(3, daily_target=4, **SIMPLE)
    _open(page, annotator, project)
    first = _shown(page)
    _server_down(page)
    page.keyboard.press("1")
    page.keyboard.press("Enter")
    second = _shown(page)  # the prefetched pair, shown without the server
    assert second != first
    page.keyboard.press("2")
    page.keyboard.press("Enter")
    expect(page.locator("#task-waiting")).to_be_visible()  # nothing more prefetched while the server is away
    status = page.locator("#send-status")
    expect(status).to_contain_text("2 answers waiting to send", timeout=30_000)
    expect(status).to_contain_text("retrying")
    assert Judgment.objects.count() == 0
    stored = page.evaluate(
        "() => Object.keys(localStorage).filter(k => k.startsWith('preflab.outbox.'))"
        ".map(k => JSON.parse(localStorage.getItem(k))).flat()"
    )
    assert [(a["type"], a["task"], a["body"]["choice"]) for a in stored] == [
        ("submit", first, "A"),
        ("submit", second, "B"),
    ]
    left_with_unsent = page.evaluate(
        "() => { const e = new Event('beforeunload', {cancelable: true}); window.dispatchEvent(e);"
        " return e.defaultPrevented; }"
    )
    assert left_with_unsent  # leaving the page warns

    page.on("dialog", lambda dialog: dialog.accept())  # "leave the page?" on the reload: yes
    page.reload()
    expect(page.locator("#send-status")).to_contain_text("2 answers waiting to send", timeout=30_000)
    assert _shown(page) not in (first, second) if page.locator("#judgment-form").is_visible() else True
    _server_up(page)
    _all_sent(page)
    expect(page.locator("#judgment-form")).to_have_attribute("data-task", str(tasks[2].pk), timeout=30_000)
    rows = {j.task_id: j.choice for j in Judgment.objects.filter(annotator=annotator)}
    assert rows == {first: "A", second: "B"}
    expect(page.locator("#done-today")).to_have_text("2")
    expect(page.locator(".daily-count")).to_have_text("2 / 4 today")  # the daily-target bar follows
    assert page.evaluate("() => Object.keys(localStorage).filter(k => k.startsWith('preflab.outbox.'))") == []
    _quiet_console(console_errors)


def test_undo_restores_the_pair_and_its_answer(page, console_errors):
    annotator, project, tasks = _setup(3, undo_grace_seconds=120)
    _open(page, annotator, project)
    first = _shown(page)
    page.keyboard.press("Enter")  # no choice yet: a visible message, nothing sent
    expect(page.locator("#page-message")).to_contain_text("Choose an answer first")
    page.keyboard.press("1")
    page.keyboard.press("Enter")  # strength missing
    expect(page.locator("#page-message")).to_contain_text("how much better")
    page.keyboard.press("w")
    page.keyboard.press("r")  # R focuses the rationale box
    assert page.evaluate("() => document.activeElement.name") == "rationale"
    page.keyboard.type("Shorter and correct.")
    page.keyboard.press("Escape")
    page.keyboard.press("Enter")
    expect(page.locator("#judgment-form")).not_to_have_attribute("data-task", str(first))
    _all_sent(page)
    assert Judgment.objects.get(task_id=first).rationale == "Shorter and correct."

    page.keyboard.press("u")  # back at once, with its answer
    expect(page.locator("#judgment-form")).to_have_attribute("data-task", str(first))
    expect(page.locator("input[name=choice][value=A]")).to_be_checked()
    expect(page.locator("input[name=strength][value='2']")).to_be_checked()
    expect(page.locator("textarea[name=rationale]")).to_have_value("Shorter and correct.")
    _all_sent(page)
    assert not Judgment.objects.filter(task_id=first).exists()

    # Tie greys strength; Q is then ignored, and the stored judgment has none.
    page.keyboard.press("3")
    expect(page.locator("input[name=strength][value='1']")).to_be_disabled()  # its fieldset is disabled
    page.keyboard.press("q")
    expect(page.locator("input[name=strength][value='1']")).not_to_be_checked()
    page.keyboard.press("Enter")
    _all_sent(page)
    judgment = Judgment.objects.get(task_id=first)
    assert (judgment.choice, judgment.strength, judgment.rationale) == ("tie", None, "Shorter and correct.")

    # An answer still in the outbox is undone in the page alone: nothing reaches the server.
    _server_down(page)
    second = _shown(page)
    page.keyboard.press("2")
    page.keyboard.press("e")
    page.keyboard.press("Enter")
    page.keyboard.press("u")
    expect(page.locator("#judgment-form")).to_have_attribute("data-task", str(second))
    expect(page.locator("input[name=choice][value=B]")).to_be_checked()
    _server_up(page)
    page.keyboard.press("Enter")
    _all_sent(page)
    assert Judgment.objects.get(task_id=second).strength == 3
    assert Judgment.objects.filter(annotator=annotator).count() == 2
    _quiet_console(console_errors)


def test_undo_after_reload_brings_the_pair_back(page):
    annotator, project, _ = _setup(3, **SIMPLE)
    _open(page, annotator, project)
    first = _shown(page)
    page.keyboard.press("2")
    page.fill("textarea[name=rationale]", "B explains why.")
    page.click("#submit-btn")
    _all_sent(page)
    page.reload()
    expect(page.locator("#undo-btn")).to_be_visible()
    page.keyboard.press("u")
    expect(page.locator("#judgment-form")).to_have_attribute("data-task", str(first), timeout=30_000)
    expect(page.locator("textarea[name=rationale]")).to_have_value("B explains why.")
    expect(page.locator("input[name=choice][value=B]")).to_be_checked()
    _all_sent(page)
    assert not Judgment.objects.filter(task_id=first).exists()


def _overflow(page) -> dict:
    return page.evaluate(
        """() => {
          const a = document.querySelector('#cand-a').getBoundingClientRect();
          const b = document.querySelector('#cand-b').getBoundingClientRect();
          const pre = document.querySelector('#cand-a .codehilite pre');
          const head = document.querySelector('.topbar');
          return {scroll: document.documentElement.scrollWidth, inner: window.innerWidth,
                  a: a.width, b: b.width, preScrolls: pre.scrollWidth > pre.clientWidth,
                  head: head.scrollWidth, headBox: head.clientWidth};
        }"""
    )


@pytest.mark.parametrize("width", [1280, 390])
def test_long_code_never_breaks_the_layout(page, width):
    annotator = make_user(Role.ANNOTATOR)
    project = make_project(name="A project with a rather long name for a phone header")
    add_member(project, annotator)
    make_task(project, a=CODE_A + "\n\n" + "y" * 300, b=CODE_B)
    page.set_viewport_size({"width": width, "height": 900})
    login(page, annotator.username)
    page.goto(f"/projects/{project.pk}/annotate")
    expect(page.locator("#cand-a .codehilite .s1").first).to_be_visible()  # highlighted server-side
    m = _overflow(page)
    assert m["scroll"] <= m["inner"], m  # no horizontal scrolling of the page
    assert abs(m["a"] - m["b"]) <= 3, m  # both columns (or both stacked cards) the same width
    assert m["preScrolls"], m  # the long line scrolls inside its code box
    assert m["head"] <= m["headBox"], m  # the header does not overflow
    if width < 800:
        a_box, b_box = page.locator("#cand-a").bounding_box(), page.locator("#cand-b").bounding_box()
        assert b_box["y"] >= a_box["y"] + a_box["height"]  # stacked on a phone


def test_multi_turn_prompt_is_a_transcript(page):
    annotator = make_user(Role.ANNOTATOR)
    project = make_project()
    add_member(project, annotator)
    history = "Here is a long earlier message. " * 60
    prompt = make_prompt(
        project,
        "chat",
        messages=[
            {"role": "system", "content": "You are a terse assistant."},
            {"role": "user", "content": history},
            {"role": "assistant", "content": "Noted."},
            {"role": "user", "content": "So, which **sorting** algorithm should I use?"},
        ],
    )
    make_task(project, prompt=prompt, a="Timsort.", b="Bubble sort.")
    login(page, annotator.username)
    page.goto(f"/projects/{project.pk}/annotate")
    final = page.locator("#final-turn")
    expect(final).to_contain_text("which sorting algorithm")
    expect(final.locator(".role")).to_have_text("User")
    assert final.evaluate("e => e.getBoundingClientRect().bottom <= window.innerHeight")  # in view
    history_box = page.locator("#prompt-history")
    expect(history_box).not_to_have_attribute("open", "")  # long history starts folded
    expect(page.get_by_text("You are a terse assistant.")).to_be_hidden()
    history_box.locator("summary").click()
    expect(page.get_by_text("You are a terse assistant.")).to_be_visible()
    roles = page.locator("#prompt-history .role").all_inner_texts()
    assert [r.lower() for r in roles] == ["system", "user", "assistant"]


def test_math_tables_code_and_diff(page):
    annotator = make_user(Role.ANNOTATOR)
    project = make_project()
    add_member(project, annotator)
    make_task(project, a=RICH_A, b=RICH_B)
    make_task(project, a="Paris is the capital of France.", b="Completely unrelated words here entirely.")
    login(page, annotator.username)
    page.goto(f"/projects/{project.pk}/annotate")
    expect(page.locator("#cand-a .katex").first).to_be_visible()  # typeset by the vendored KaTeX
    expect(page.locator("#cand-a .math-display .katex-display")).to_have_count(1)
    border = page.locator("#cand-a td").first.evaluate("e => getComputedStyle(e).borderTopStyle")
    assert border == "solid"
    page.keyboard.press("d")  # diff keeps the Markdown: bold, code and math stay rendered
    diff_b = page.locator("#cand-b .diff")
    expect(diff_b).to_be_visible()
    expect(diff_b.locator("strong")).to_have_text("circumference")
    expect(diff_b.locator(".codehilite")).to_have_count(1)
    expect(diff_b.locator("mark.ins").first).to_be_visible()
    page.keyboard.press("1")
    page.keyboard.press("q")
    page.keyboard.press("Enter")
    # The next pair shares little text: the diff stays off although it was on, and the page says why.
    expect(page.locator(".diff-note")).to_contain_text("share little text")
    expect(page.locator("#cand-a .diff")).to_be_hidden()
    expect(page.locator("#cand-a .md").first).to_be_visible()


def test_dark_mode_follows_the_system(page):
    annotator, project, _ = _setup(1)
    make_task(project, a=RICH_A, b=RICH_B)
    page.emulate_media(color_scheme="dark")
    login(page, annotator.username)
    page.goto(f"/projects/{project.pk}/annotate")
    colours = page.evaluate(
        """() => {
          const rgb = s => s.match(/\\d+/g).slice(0, 3).map(Number);
          const lum = ([r, g, b]) => (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255;
          const bg = lum(rgb(getComputedStyle(document.body).backgroundColor));
          const card = lum(rgb(getComputedStyle(document.querySelector('#cand-a')).backgroundColor));
          const text = lum(rgb(getComputedStyle(document.querySelector('#cand-a')).color));
          const choice = lum(rgb(getComputedStyle(document.querySelector('label.choice')).backgroundColor));
          return {bg, card, text, choice};
        }"""
    )
    assert colours["bg"] < 0.2 and colours["card"] < 0.2 and colours["choice"] < 0.2, colours
    assert colours["text"] > 0.7, colours


def test_screenshots_for_the_readme(page, screenshot_dir):
    annotator = make_user(Role.ANNOTATOR)
    project = make_project(name="Math tutor answers", undo_grace_seconds=120)
    add_member(project, annotator)
    prompt = make_prompt(
        project,
        "chat",
        messages=[
            {"role": "user", "content": "I am revising geometry for an exam."},
            {"role": "assistant", "content": "Happy to help! What would you like to go over?"},
            {
                "role": "user",
                "content": "What is the **area** of a circle of radius 2, and how do I compute it?",
            },
        ],
    )
    make_task(project, prompt=prompt, a=RICH_A, b=RICH_B)
    make_task(project, a=CODE_A, b=CODE_B)
    login(page, annotator.username)
    page.goto(f"/projects/{project.pk}/annotate")
    expect(page.locator("#cand-a .katex").first).to_be_visible()
    page.keyboard.press("1")
    page.keyboard.press("e")
    page.fill("textarea[name=rationale]", "A gets the formula right; B gives the circumference.")
    page.locator("textarea[name=rationale]").blur()
    page.screenshot(path=str(screenshot_dir / "annotate.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(screenshot_dir / "annotate-narrow.png"), full_page=True)
    assert json.loads(page.locator("#annotate-config").text_content())["project"] == project.pk
