"""Help text laid out for the terminal's width, so commands write their help as plain paragraphs.

A command's docstring or ``HELP`` is written as paragraphs (blank line between them) whose lines may be wrapped
anywhere. At ``--help`` time, for the actual width:

- a paragraph's consecutive non-indented lines are joined into one line and re-flowed by rich;
- an indented line that is not an example starts an item of a list (``  --paper  connect to ...``); its
  continuation lines are indented deeper; the item is wrapped with that hanging indent;
- an example (a line starting with ``ibkrtool `` or ``$ ``, indented or not) is never re-flowed: one too wide
  for the terminal is split before an option, with a shell continuation (`` \\``), so it still pastes whole.

No terminal-specific code is in the command modules: they just write paragraphs.
"""

from __future__ import annotations

import inspect
import re
import textwrap

EXAMPLE_PREFIXES = ("ibkrtool ", "$ ")
# A shell word: runs of unquoted characters and quoted strings (which may hold spaces).
_SHELL_WORD = re.compile(r"""(?:[^\s"']+|"[^"]*"|'[^']*')+""")
# "--paper     connect to ..." or "1d  daily bars": a term, two or more spaces, the description.
# Words kept with the word after them when a long example is split.
_CARRIED = ("-", "<", ">", "2>", "|")
_TERM = re.compile(r"^(\S+(?: \S+)*?)( {2,})\S")


def is_example(stripped: str) -> bool:
    return stripped.startswith(EXAMPLE_PREFIXES)


def first_paragraph(text: str | None) -> str:
    """The first paragraph of ``text`` as one line (the summary shown in a command list)."""
    paragraph = re.split(r"\n\s*\n", inspect.cleandoc(text or ""), maxsplit=1)[0]
    return " ".join(line.strip() for line in paragraph.splitlines() if line.strip())


def reflow(text: str, width: int) -> str:
    """``text`` laid out for ``width`` columns as described in the module docstring. Text after a ``\\f`` line
    (click's "not for help" marker) is dropped; a paragraph starting with ``\\b`` is kept verbatim."""
    text = inspect.cleandoc(text).partition("\f")[0]
    paragraphs = [p for p in re.split(r"\n[ \t]*\n", text) if p.strip()]
    out = []
    for index, paragraph in enumerate(paragraphs):
        if paragraph.startswith("\b"):
            out.append(paragraph)
        elif index == 0 and not any(is_example(line.strip()) for line in paragraph.splitlines()):
            out.append(first_paragraph(paragraph))  # typer joins the first paragraph itself: one line
        else:
            out.append("\n".join(_layout(paragraph.splitlines(), width)))
    return "\n\n".join(out)


def _blocks(lines: list[str]) -> list[list]:
    """[kind, indent, hang, text] blocks: kind is prose, item or example."""
    blocks: list[list] = []
    for line in lines:
        stripped = line.strip()
        if not stripped:
            continue
        indent = len(line) - len(line.lstrip())
        last = blocks[-1] if blocks else None
        if is_example(stripped):
            blocks.append(["example", indent, indent + 4, stripped])
        elif indent == 0 and last is not None and last[0] == "prose":
            last[3] += " " + stripped
        elif indent == 0:
            blocks.append(["prose", 0, 0, stripped])
        elif last is not None and last[0] == "item" and indent > last[1]:
            if last[2] is None:
                last[2] = indent
            last[3] += " " + stripped
        else:
            blocks.append(["item", indent, None, line.rstrip()[indent:]])
    return blocks


def _layout(lines: list[str], width: int) -> list[str]:
    out: list[str] = []
    for kind, indent, hang, text in _blocks(lines):
        if kind == "prose":
            out.append(text)  # rich wraps it at the panel's width
        elif kind == "example":
            out += split_example(text, indent, width)
        else:
            out += _wrap_item(text, indent, hang, width)
    return out


def _wrap_item(text: str, indent: int, hang: int | None, width: int) -> list[str]:
    if hang is None:
        term = _TERM.match(text)
        hang = indent + (term.end() - 1 if term else 2)
    if hang > width // 2:
        hang = indent + 4
    return textwrap.wrap(text, width=max(width, hang + 20), initial_indent=" " * indent,
                         subsequent_indent=" " * hang, break_on_hyphens=False, break_long_words=False)


def split_example(command: str, indent: int, width: int) -> list[str]:
    """One example command as lines of at most ``width`` columns (when its words allow): continuation lines end
    in `` \\`` and are indented 4 more; breaks go before an option (with its value) or a pipe when possible."""
    if indent + len(command) <= width:
        return [" " * indent + command]
    words = _SHELL_WORD.findall(command)
    lines: list[list[str]] = [[]]
    for word in words:
        current = lines[-1]
        prefix = indent if len(lines) == 1 else indent + 4
        if current and prefix + len(" ".join([*current, word])) + 2 > width:
            carry = []
            if "|" in current[1:]:  # break before the pipe: each command of a pipeline on its line
                at = len(current) - 1 - current[::-1].index("|")
                carry, current[:] = current[at:], current[:at]
            elif not word.startswith(("-", "|")) and len(current) > 1 and current[-1].startswith(_CARRIED):
                carry = [current.pop()]  # keep an option with its value, a redirection with its file
            lines.append([*carry])
            current = lines[-1]
        current.append(word)
    rendered = []
    for number, words_of_line in enumerate(lines):
        prefix = " " * (indent if number == 0 else indent + 4)
        tail = " \\" if number < len(lines) - 1 else ""
        rendered.append(prefix + " ".join(words_of_line) + tail)
    return rendered
