"""Token conventions of probe's synthetic tasks: 0 = pad, 1 = bos, 2 = eos; symbols follow the specials."""

PAD, BOS, EOS = 0, 1, 2
N_SPECIAL = 3
