"""NSynth-format datasets: reading, rendering from SoundFonts, a synthetic generator, and features."""
