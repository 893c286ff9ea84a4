"""Command line: ``explainer analyze | tokenize | heads | attribute | patch | bench | scenes``; with no
subcommand, the window.

Errors a user can cause print one sentence to stderr and exit with status 2; never a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import stat
import sys
import textwrap
from collections.abc import Sequence

from explainer.core.errors import UserError

SUBCOMMANDS = ("analyze", "tokenize", "heads", "attribute", "patch", "bench", "scenes")
log = logging.getLogger("explainer")


class DashValues(argparse.ArgumentParser):
    """argparse that reads a word starting with a dash and a digit (``--ablate -1:1``, ``--size -5x10``) as an
    option's value, not as an unknown option: no option here starts with a digit, and the value then gets the
    option's own complaint (no layer -1) instead of "expected one argument"."""

    def _parse_optional(self, arg_string):
        if len(arg_string) > 1 and arg_string[0] == "-" and arg_string[1].isdigit():
            return None
        return super()._parse_optional(arg_string)


class _Parser(DashValues):
    """argparse that reports a usage error in one sentence (exit 2) instead of a usage dump."""

    def error(self, message: str):
        # "-hello" is read as -h with "ello" after it: a text that starts with a dash, not a misused -h
        dash = " (a text that starts with '-' goes after --)" if "ignored explicit argument" in message else ""
        raise UserError(f"{message[:1].upper()}{message[1:]}; run '{self.prog} --help' for usage{dash}.")


def clean_text(s: str) -> str:
    """Text from argv or a file, as valid Unicode: undecodable bytes and lone surrogates become U+FFFD."""
    try:
        s.encode("utf-8")
        return s
    except UnicodeEncodeError:
        return (
            os.fsencode(s).decode("utf-8", errors="replace")
            if _only_escapes(s)
            else s.encode("utf-8", errors="surrogatepass").decode("utf-8", errors="replace")
        )


def _only_escapes(s: str) -> bool:
    return all(not (0xD800 <= ord(c) <= 0xDFFF) or 0xDC80 <= ord(c) <= 0xDCFF for c in s)


MAX_TEXT_FILE_BYTES = 64 * 2**20  # (a model reads a few thousand tokens of a text: tens of kB)


def _read_limited(f, name: str) -> bytes:
    data = f.read(MAX_TEXT_FILE_BYTES + 1)
    if len(data) > MAX_TEXT_FILE_BYTES:
        raise UserError(
            f"{name} holds more than {MAX_TEXT_FILE_BYTES // 2**20} MB of text; explainer reads texts up to that "
            "size (the model reads at most its context of it): give the part you want analysed."
        )
    return data


def read_texts(texts: Sequence[str], text_file: str | None, verb: str = "analyse") -> list[str]:
    if text_file is not None:
        if texts:
            raise UserError("Give either TEXT arguments or --text-file, not both.")
        try:
            if text_file == "-":
                if sys.stdin is None:
                    raise UserError("Standard input is closed; give the text as arguments or with --text-file PATH.")
                data = _read_limited(sys.stdin.buffer, "Standard input")
            else:
                if os.path.isdir(text_file):
                    raise IsADirectoryError
                from explainer.core.paths import open_without_waiting

                with open_without_waiting(text_file) as f:  # (a pipe nobody writes to: a sentence, not a wait)
                    data = _read_limited(f, f"The text file {text_file}")
                    if not data and stat.S_ISFIFO(os.fstat(f.fileno()).st_mode):
                        raise UserError(
                            f"Nothing was written to the pipe {text_file} (no program writes to it); start the one "
                            "that does first, or pipe the text into --text-file -."
                        )
        except IsADirectoryError:
            raise UserError(f"--text-file {text_file} is a folder; give a text file.") from None
        except FileNotFoundError:
            if not text_file:
                raise UserError("--text-file needs a path (or - for standard input).") from None
            raise UserError(f"The text file {text_file} does not exist; check the path.") from None
        except OSError as e:
            raise UserError(f"The text file {text_file} cannot be read ({e.strerror}).") from None
        except ValueError:  # a NUL in the path (only possible in-process, not from a real argv)
            raise UserError(f"--text-file {text_file!r} is not a valid path.") from None
        if data.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 with its byte-order mark ("Unicode" in Notepad)
            return [data.decode("utf-16", errors="replace")]
        if data.startswith(b"\xef\xbb\xbf"):
            data = data[3:]
        return [data.decode("utf-8", errors="replace")]
    if not texts:
        raise UserError(f"Give the text to {verb} as arguments, or use --text-file PATH (or - for standard input).")
    return [clean_text(t) for t in texts]


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model",
        metavar="PATH",
        help="a Llama GGUF file, or a Hugging Face model folder of a Llama, Qwen2 or GPT-2 model "
        "(default: the bundled SmolLM2-135M-Instruct)",
    )
    p.add_argument("--device", default="auto", help="cpu, cuda or auto (default: cuda when available)")


def add_text_args(p: argparse.ArgumentParser) -> None:
    """How a text becomes the analysed tokens, and heads to knock out: shared by analyze, attribute and patch."""
    p.add_argument("--no-start-token", action="store_true", help="don't prepend the model's start-of-text token")
    p.add_argument(
        "--max-tokens", type=int, default=1024, metavar="N", help="cut the text after N tokens (default 1024)"
    )
    p.add_argument("--parse-specials", action="store_true", help="treat typed <|im_end|> etc. as special tokens")
    p.add_argument(
        "--ablate",
        metavar="L:H[,L:H...]",
        help="knock out these attention heads (layer:head, numbered from 1): their outputs are set to zero",
    )


def ablated_heads(args, engine) -> tuple:
    """The ``--ablate`` heads as 0-based (layer, head) pairs checked against the model (UserError otherwise)."""
    from explainer.core.knockout import parse_heads

    return () if args.ablate is None else parse_heads(args.ablate, engine.info.n_layers, engine.info.n_heads)


def heads_json(heads) -> list:
    """Knocked-out heads for JSON output, numbered from 1: ``[[layer, head], ...]``."""
    return [[layer + 1, head + 1] for layer, head in heads]


def token_json(t) -> dict:
    return {"id": t.id, "text": t.text, "bytes": t.bytes.hex(), "special": t.special}


def build_parser() -> argparse.ArgumentParser:
    from explainer.ui.app import build_parser as window_parser  # argparse only: cheap

    parser = _Parser(
        prog="explainer",
        description="Watch a small language model think: tokens, attention, "
        "embeddings and next-token probabilities. Without a subcommand, opens the window.",
        epilog="Without a subcommand, explainer opens the window:\n\n" + window_parser().format_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    a = sub.add_parser("analyze", help="run the model on text and print per-token probabilities")
    _add_model_args(a)
    add_text_args(a)
    a.add_argument(
        "--top-k",
        type=int,
        metavar="K",
        help="next-token candidates per position (default: 10 with --json, 3 in the table)",
    )
    a.add_argument("--attention", action="store_true", help="include attention [layer][head][query][key] in --json")
    a.add_argument(
        "--backend",
        default="torch",
        choices=("torch", "onnx", "stored", "auto"),
        help="run the model with torch, ONNX Runtime (float32, exported once), stored (ONNX Runtime on the "
        "file's own 4-bit weights) or auto (default torch)",
    )
    a.add_argument("--json", action="store_true", help="print a JSON array, one object per text")
    a.add_argument("--text-file", metavar="PATH", help="read the text from a file, or - for standard input")
    a.add_argument("text", nargs="*", metavar="TEXT")
    t = sub.add_parser("tokenize", help="split text into tokens with one of the tokenizers")
    t.add_argument("--tokenizer", default="smollm2", help="smollm2, cl100k_base or o200k_base (default smollm2)")
    t.add_argument("--parse-specials", action="store_true", help="treat typed <|im_end|> etc. as special tokens")
    t.add_argument("--json", action="store_true")
    t.add_argument("--text-file", metavar="PATH", help="read the text from a file, or - for standard input")
    t.add_argument("text", nargs="*", metavar="TEXT")
    sc = sub.add_parser("scenes", help="list the lecture scenes (layers and heads numbered from 1, as on screen)")
    sc.add_argument("--json", action="store_true", help="print a JSON array, one object per scene")
    for name, mod in (
        ("heads", "explainer.core.heads"),
        ("attribute", "explainer.cli_why"),
        ("patch", "explainer.cli_why"),
        ("bench", "explainer.bench"),
    ):
        try:
            module = __import__(mod, fromlist=["add_arguments"])
            register = getattr(module, f"add_{name}_arguments", None) or module.add_arguments
        except (ImportError, AttributeError):
            continue
        sp = sub.add_parser(name, help=register.__doc__)
        _add_model_args(sp)
        register(sp)
    return parser


def _out(obj) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, indent=None) + "\n")


def cmd_tokenize(args) -> int:
    from explainer.core.tokenizers import get_tokenizer

    tok = get_tokenizer(args.tokenizer)
    rows = []
    for text in read_texts(args.text, args.text_file, "tokenize"):
        tz = tok.tokenize(text, parse_specials=args.parse_specials)
        rows.append(
            {
                "text": text,
                "tokenizer": tok.name,
                "ids": tz.ids,
                "tokens": [
                    {"id": t.id, "text": t.text, "bytes": t.bytes.hex(), "start": t.start, "end": t.end}
                    for t in tz.tokens
                ],
                "dropped": [{"char_index": d.char_index, "byte": f"{d.value:02x}"} for d in tz.dropped],
                "specials_parsed": tz.specials_parsed,
            }
        )
    if args.json:
        _out(rows)
    else:
        for r in rows:
            n, chars = len(r["ids"]), len(r["text"])
            print(f"{n} token{'s' if n != 1 else ''}, {chars} character{'s' if chars != 1 else ''} ({tok.name})")
            for t in tz_tokens_display(r):
                print(t)
    return 0


def tz_tokens_display(row) -> list[str]:
    from explainer.core.types import visible_text

    return [f"  {t['id']:>7}  {visible_text(t['text'])!s}" for t in row["tokens"]]


def result_to_json(r, tokenizer, top_k: int, with_attention: bool) -> dict:
    """The ``analyze --json`` object for one result (the contract in the README)."""
    import math

    def num(x):
        x = float(x)
        return None if math.isnan(x) else x

    positions = []
    for i in range(r.n_tokens):
        top = [
            {"id": int(j), "text": tokenizer.decode([int(j)]), "prob": float(p)}
            for j, p in zip(r.top_ids[i][:top_k], r.top_probs[i][:top_k])
        ]
        positions.append({"prob": num(r.token_prob[i]), "surprisal_bits": num(r.surprisal_bits[i]), "top": top})
    out = {
        "text": r.text,
        "model": r.model.name,
        "device": r.device,
        "backend": r.backend,
        "truncated": r.truncated,
        "tokens": [token_json(t) for t in r.tokens],
        "positions": positions,
        "sentence_logprob": r.sentence_logprob,
        "dropped": [{"char_index": d.char_index, "byte": f"{d.value:02x}"} for d in r.dropped],
        "specials_parsed": r.specials_parsed,
    }
    if r.ablated:
        out["ablated"] = heads_json(r.ablated)
    if with_attention:
        out["attention"] = r.attention.full().tolist()
    return out


def cmd_analyze(args) -> int:
    from explainer.core.engine import Engine

    if args.top_k is None:
        args.top_k = 10 if args.json else 3
    if args.top_k < 1:
        raise UserError("--top-k must be at least 1.")
    if args.max_tokens < 1:
        raise UserError("--max-tokens must be at least 1.")
    if args.attention and not args.json:
        raise UserError("--attention adds the attention weights to the JSON output: use it with --json.")
    texts = read_texts(args.text, args.text_file)
    engine = Engine(args.model, device=args.device, backend=args.backend, progress=_stderr_progress)
    if args.attention:  # printed numbers: every attention row stays float32 (the app keeps long texts' as float16)
        engine.fp32_rows = 1 << 30
    if args.backend == "auto":
        engine.wait_for_backend(_stderr_progress)
    if engine.notice:
        sys.stderr.write(f"explainer: {engine.notice}\n")
    heads = ablated_heads(args, engine)
    k = min(args.top_k, engine.info.vocab_size)
    # never analyse past the model's context (memory grows with T²); "truncated" says it was cut
    max_tokens = min(args.max_tokens, engine.info.context_length)
    _check_analysis_memory(engine, texts, args, max_tokens, k)
    results = [
        engine.analyze(
            t,
            start_token=not args.no_start_token,
            max_tokens=max_tokens,
            top_k=k,
            parse_specials=args.parse_specials,
            ablated=heads,
        )
        for t in texts
    ]
    if args.json:
        _out([result_to_json(r, engine.tokenizer, k, args.attention) for r in results])
        return 0
    for r in results:
        print_table(r, engine, k)
    return 0


def _check_analysis_memory(engine, texts: list[str], args, max_tokens: int, k: int) -> None:
    """UserError (one sentence) when the analyses of ``texts`` and their output would not fit in memory."""
    from explainer.core import work_memory as wm

    per_weight = wm.ANALYSIS_FP32 if args.attention else wm.ANALYSIS  # --attention keeps every row float32
    if args.json and args.attention:
        per_weight = wm.ANALYSIS_WITH_ATTENTION_JSON
    per_candidate = 12 + (wm.CANDIDATE_JSON if args.json else 0)  # the result's top-k arrays, and their JSON
    need = 0.0
    for text in texts:
        _, tokens, _ = engine.tokens_for(
            text, start_token=not args.no_start_token, max_tokens=max_tokens, parse_specials=args.parse_specials
        )
        n = len(tokens)
        need += per_weight * wm.attention_weights(engine.info, n) + per_candidate * n * k
    items = ["a shorter text", "a smaller --max-tokens"] + (["a smaller --top-k"] if args.json else [])
    if args.json and args.attention:
        items.append("no --attention")
    advice = "use " + ", ".join(items[:-1]) + " or " + items[-1]
    wm.require(need, "This analysis" if len(texts) == 1 else f"Analysing these {len(texts)} texts", advice)


def cmd_scenes(args) -> int:
    from explainer.core.scene import lecture_set, scene_summary

    rows = [scene_summary(p, s) for p, s in lecture_set()]
    if args.json:
        _out(rows)
        return 0
    print(f"{'#':>2}  {'name':<20} {'view':<11} {'layer':>5} {'head':>4}  title")
    for i, r in enumerate(rows, 1):
        layer, head = ("–" if r[k] is None else str(r[k]) for k in ("layer", "head"))
        print(f"{i:>2}  {r['name']:<20} {r['view']:<11} {layer:>5} {head:>4}  {r['title']}")
        keys = ("embedding_layer", "position", "temperature", "seed")
        extra = [f"{k.replace('_', ' ')} {r[k]:g}" for k in keys if r[k] is not None]
        if r.get("knocked_out"):
            extra.append("heads knocked out " + ", ".join(f"{la}:{h}" for la, h in r["knocked_out"]))
        for line in textwrap.wrap(r["note"], 96) + ([", ".join(extra)] if extra else []):
            print(f"{'':>4}{line}")
    return 0


def print_table(r, engine, k: int = 3) -> None:
    from explainer.core.types import display_bytes

    print(
        f"{r.model.name} on {r.device}: {r.n_tokens} token{'s' if r.n_tokens != 1 else ''}"
        + (" (truncated)" if r.truncated else "")
    )
    if r.ablated:
        from explainer.core.knockout import heads_label

        print(f"heads knocked out (layer:head): {heads_label(r.ablated)}")
    print(f"{'#':>4}  {'token':<16} {'id':>6}  {'prob':>8}  {'bits':>6}  top next tokens")
    for i, t in enumerate(r.tokens):
        p = "" if r.token_prob[i] != r.token_prob[i] else f"{r.token_prob[i]:.4f}"
        s = "" if r.surprisal_bits[i] != r.surprisal_bits[i] else f"{r.surprisal_bits[i]:.2f}"
        tops = ", ".join(
            f"{display_bytes(engine.tokenizer.token_bytes(int(j)))!r} {p_:.3f}"  # as the token column names them
            for j, p_ in zip(r.top_ids[i][:k], r.top_probs[i][:k])
        )
        print(f"{i:>4}  {t.display[:16]:<16} {t.id:>6}  {p:>8}  {s:>6}  {tops}")
    print(f"log P(text) = {r.sentence_logprob:.4f} nats = {r.sentence_log10:.4f} (log10) = {-r.sentence_bits:.3f} bits")


def _stderr_progress(msg: str, frac: float) -> None:
    if frac < 1.0 and sys.stderr.isatty():
        sys.stderr.write(f"\r{msg} ({frac:.0%})\033[K")
        sys.stderr.flush()
    elif frac >= 1.0 and sys.stderr.isatty():
        sys.stderr.write("\r\033[K")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    level = os.environ.get("EXPLAINER_LOG", "WARNING").strip().upper()
    known = isinstance(logging.getLevelName(level), int)  # (a name it knows maps to its number)
    logging.basicConfig(level=level if known else "WARNING", format="%(levelname)s %(name)s: %(message)s")
    if not known:
        log.warning("EXPLAINER_LOG=%r is not a logging level (DEBUG, INFO, WARNING, ERROR); using WARNING.", level)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(encoding="utf-8", errors="backslashreplace")
        except (AttributeError, ValueError):
            pass
    if argv and not argv[0].startswith("-") and argv[0] not in SUBCOMMANDS:
        _say(_unknown_command(argv[0]))  # the window takes options only: a word first is a mistyped command
        return 2
    if not argv or argv[0] not in SUBCOMMANDS and argv[0] not in ("-h", "--help"):
        from explainer.ui.app import main as gui_main

        return gui_main(argv)
    if sys.stdout is None:  # started with its standard output closed
        _say("explainer: Standard output is closed, so there is nowhere to print the result.")
        return 2
    out_of_memory = "explainer: out of memory; use a shorter text or a smaller --max-tokens."
    if argv[0] in ("heads", "bench", "scenes", "tokenize"):
        out_of_memory = "explainer: out of memory; close other programs or choose smaller settings."
    stdout, sys.stdout = sys.stdout, _Output(sys.stdout)
    try:
        parser = build_parser()
        args, extra = parser.parse_known_args(argv)
        if extra:  # the subcommand's own help, and how to give a text that starts with a dash
            raise UserError(
                f"Unrecognized arguments: {' '.join(extra)}; run 'explainer {args.command} --help' for usage"
                + (" (a text that starts with '-' goes after --)." if any(a.startswith("-") for a in extra) else ".")
            )
        handler = {"analyze": cmd_analyze, "tokenize": cmd_tokenize, "scenes": cmd_scenes}.get(
            args.command
        ) or args.handler
        code = handler(args)
        sys.stdout.flush()
        return code
    except UserError as e:
        _say(f"explainer: {_one_line(str(e))}")  # a path may hold a newline
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        _discard_output(stdout)
        return 0
    except MemoryError:
        _say(out_of_memory)
        return 2
    except Exception as e:  # a bug: say so in one line; EXPLAINER_DEBUG=1 shows the traceback
        if os.environ.get("EXPLAINER_DEBUG"):
            raise
        if _is_out_of_memory(e):  # torch reports a failed allocation as a RuntimeError
            _say(out_of_memory)
            return 2
        _say(f"explainer: internal error ({type(e).__name__}: {_one_line(str(e))}); please report it.")
        return 1
    finally:
        sys.stdout = stdout


class OutputError(UserError):
    """Standard output could not take the result (a full disk, a closed or failing device)."""


class _Output:
    """Standard output while a subcommand runs: a failed write becomes one sentence (``OutputError``), and what
    was left unwritten is dropped, so that Python's own flush at exit does not fail again."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, s: str) -> int:
        return self._guard(self._stream.write, s)

    def flush(self) -> None:
        self._guard(self._stream.flush)

    def _guard(self, call, *args):
        try:
            return call(*args)
        except BrokenPipeError:
            raise
        except OSError as e:
            _discard_output(self._stream)
            raise OutputError(f"The result could not be written to standard output ({e.strerror or e}).") from None

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def _discard_output(stream) -> None:
    """Point ``stream``'s file descriptor at the null device: nothing more is written, and the flush at exit
    succeeds. A stream without a descriptor of its own (a capture in tests) is left alone."""
    try:
        fd = stream.fileno()
    except (OSError, ValueError):  # no descriptor: nothing will be flushed to one at exit either
        return
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, fd)
    finally:
        os.close(null)


def _say(line: str) -> None:
    """One line on standard error, when there is one."""
    if sys.stderr is not None:
        sys.stderr.write(line + "\n")


def _unknown_command(word: str) -> str:
    import difflib

    close = difflib.get_close_matches(word.lower(), SUBCOMMANDS, n=1, cutoff=0.6)
    guess = f" (did you mean '{close[0]}'?)" if close else ""
    return (
        f"explainer: '{_one_line(word)}' is not a command{guess}; the commands are {', '.join(SUBCOMMANDS)}, "
        "and without one explainer opens the window ('explainer --help' says more)."
    )


def _is_out_of_memory(e: BaseException) -> bool:
    return type(e).__name__ == "OutOfMemoryError" or (isinstance(e, RuntimeError) and "can't allocate memory" in str(e))


def _one_line(s: str) -> str:
    """Control characters and line breaks in a message (from a hostile path, say) written as escapes."""
    return "".join(c if c.isprintable() or c == " " else ascii(c)[1:-1] for c in s)


if __name__ == "__main__":
    sys.exit(main())
