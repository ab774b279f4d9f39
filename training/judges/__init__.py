"""AI judges: backends that score one rendered judge prompt (one order of one comparison).

The labeling protocol (both orders, averaging, principle sampling, self-consistency) lives in
:mod:`training.labeling`; backends only turn prompts into probabilities and rationales.
"""
