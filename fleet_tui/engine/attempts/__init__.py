"""One attempt's aftermath: what a failed attempt left behind, and the retry decision."""
