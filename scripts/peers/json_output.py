"""Where a comparison's output goes: its JSON where its --json option says
(a file, or standard output for '-'), and its text tables to standard
output, or to standard error when the JSON takes standard output, so that
`--json -` gives JSON alone on standard output."""
import json
import sys

_json_stdout = sys.stdout


def tables_to_stderr_if(json_destination):
    """Call once, before any table is printed."""
    global _json_stdout
    if json_destination == "-":
        _json_stdout = sys.stdout
        sys.stdout = sys.stderr


def write_json(destination, document):
    text = json.dumps(document, indent=2)
    if destination == "-":
        print(text, file=_json_stdout)
    else:
        with open(destination, "w") as fh:
            fh.write(text + "\n")
