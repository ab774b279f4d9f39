"""Template filters of the run pages.

``markdown_safe`` is the only place where model text (judge rationales, critiques) becomes HTML: Markdown is
rendered with raw HTML disabled (so ``<script>`` or ``onerror=`` in the text is shown as text), then the HTML is
cleaned by nh3 with a small allow-list of tags and URL schemes. Everything else model-written is auto-escaped.
"""
from __future__ import annotations

import threading

import markdown
import nh3
from django import template
from django.utils.safestring import SafeString, mark_safe

register = template.Library()

#: Tags a rendered rationale may keep; anything else is removed by nh3.
ALLOWED_TAGS = {
    "p", "br", "strong", "em", "b", "i", "code", "pre", "blockquote", "ul", "ol", "li",
    "h3", "h4", "h5", "h6", "hr", "a", "table", "thead", "tbody", "tr", "th", "td",
}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}}
ALLOWED_URL_SCHEMES = {"http", "https", "mailto"}

_local = threading.local()


def _markdown() -> markdown.Markdown:
    """A per-thread Markdown converter (instances are not thread-safe) with raw HTML switched off."""
    md = getattr(_local, "md", None)
    if md is None:
        md = markdown.Markdown(extensions=["fenced_code", "sane_lists", "tables"])
        md.preprocessors.deregister("html_block")  # raw HTML blocks become escaped text
        md.inlinePatterns.deregister("html")  # inline raw HTML too
        _local.md = md
    md.reset()
    return md


def render_markdown(text: str | None) -> SafeString:
    """Markdown → sanitised HTML (nh3 allow-list); safe to put in a page.

    Args:
        text: untrusted text (e.g. a judge's rationale); None renders as "".
    """
    if not text:
        return mark_safe("")
    html = _markdown().convert(str(text))
    cleaned = nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=ALLOWED_URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
    )
    return mark_safe(cleaned)  # noqa: S308 - cleaned by nh3 just above


@register.filter(name="markdown_safe")
def markdown_safe(text: str | None) -> SafeString:
    """``{{ judgment.rationale|markdown_safe }}``: see :func:`render_markdown`."""
    return render_markdown(text)


def format_seconds(seconds: float) -> str:
    """Human-readable duration for ``seconds`` (shared with the progress JSON)."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


@register.filter
def percent(value: float | None, digits: int = 0) -> str:
    """0.257 → "26%"; None or a missing template variable ("") → "—"."""
    if value is None or value == "":
        return "—"
    return f"{value * 100:.{int(digits)}f}%"


@register.filter
def pretty_json(value) -> str:
    """Indented JSON text (auto-escaped by the template like any text)."""
    import json

    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


@register.filter
def convention_cells(row: dict) -> list[dict]:
    """The estimates of one row of :func:`training.judge_conventions.convention_table`, in column order."""
    return [row["judge"], row["judge_strict"], row["longer"], row["first_shown"]]


@register.filter
def prompt_turns(prompt) -> list[dict]:
    """A prompt's chat turns for display: ``[{"role" (user, assistant, system or other), "speaker" (Human,
    Assistant, System, or the role as given), "content"}]``. A plain-text prompt is one Human turn
    (:func:`training.chat.as_messages`). The content stays text: the template escapes or sanitises it.

    Args:
        prompt: a :class:`runs.models.Prompt` (its ``messages``, else its ``text``).
    """
    from training.transcript import ROLE_NAMES

    messages = prompt.messages if isinstance(prompt.messages, list) and prompt.messages else None
    if messages is None:
        return [{"role": "user", "speaker": ROLE_NAMES["user"], "content": prompt.text}]
    turns = []
    for message in messages:
        message = message if isinstance(message, dict) else {"content": message}
        role = str(message.get("role", ""))
        turns.append({"role": role if role in ROLE_NAMES else "other",
                      "speaker": ROLE_NAMES.get(role, role.title() or "?"), "content": str(message.get("content", ""))})
    return turns
