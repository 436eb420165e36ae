"""Numbered SQL migrations, one folder per track (`control`: the control plane; `tenant`: every project DB).

Files are applied in name order. Number ranges keep services apart: 0xxx core, 1xxx auth, 2xxx storage,
3xxx realtime, 4xxx rest, 5xxx functions. A file that has run is never edited; add a new one.
"""
