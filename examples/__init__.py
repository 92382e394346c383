"""Example domains used to dogfood memo_replay."""
