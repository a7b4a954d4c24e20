#!/usr/bin/env python3
"""Stands in for the Claude Code CLI by replaying a recorded session (tests only).

Usage: replay_cli.py FIXTURE [CLI ARGS...]. Prints the recorded stdout lines; where the
recording has a stdin line, reads one line from stdin and checks that it has the same shape
(type, subtypes, behaviour, message, prompt). On a mismatch it reports on stderr and exits 3,
so a driver that writes the wrong thing fails the test. Ends with the recorded exit code.
"""
import json
import sys


def shape(msg):
    kind = msg.get("type")
    if kind == "user":
        return ("user", msg["message"]["content"])
    if kind == "control_request":
        return ("control_request", msg["request"].get("subtype"))
    if kind == "control_response":
        response = msg["response"]
        inner = response.get("response") or {}
        return ("control_response", response.get("subtype"), response.get("request_id"),
                inner.get("behavior"), inner.get("message"))
    return (kind,)


def main():
    fixture = sys.argv[1]
    with open(fixture) as f:
        records = [json.loads(line) for line in f if line.strip()]
    for record in records:
        direction = record["dir"]
        if direction == "stdout":
            sys.stdout.write(json.dumps(record["msg"]) + "\n")
            sys.stdout.flush()
        elif direction == "stdin":
            line = sys.stdin.readline()
            if not line:
                sys.stderr.write("stdin closed early\n")
                sys.exit(4)
            got, want = shape(json.loads(line)), shape(record["msg"])
            if got != want:
                sys.stderr.write(f"unexpected stdin line: got {got!r}, want {want!r}\n")
                sys.exit(3)
        elif direction == "exit":
            sys.stderr.write(record.get("stderr", ""))
            sys.exit(record["code"])


if __name__ == "__main__":
    main()
