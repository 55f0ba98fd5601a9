"""Writes a comparison's JSON where its --json option says: a file, or
standard output for '-'."""
import json


def write_json(destination, document):
    text = json.dumps(document, indent=2)
    if destination == "-":
        print(text)
    else:
        with open(destination, "w") as fh:
            fh.write(text + "\n")
