"""The data contracts that both the runtime and training read: the NSynth folder format and the split rules
(numpy only; a bundle's evaluation applies the very split its training used)."""
