"""`make tour`: a short tour of the stride arithmetic CLI (the commands in the README)."""

from __future__ import annotations

import shlex

from stridelab.cli import main

TOUR = [
    "size --input 224 --kernel 7 --stride 2 --padding 3",
    "size --input 6 --kernel 3 --stride 2 --explain",
    "size --input 224 --layers c7s2p3,m3s2p1,c3s2p1,c1s2",
    "size --input 225 --kernel 3 --stride 2 --padding same",
    "solve --input 224 --output 112 --limit 6",
]

for command in TOUR:
    print(f"$ stridelab {command}")
    main(shlex.split(command))
    print()
