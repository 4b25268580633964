"""General MIDI programs: their names and the NSynth family and source each one is filed under.

The mapping follows NSynth's families (bass, brass, flute, guitar, keyboard, mallet, organ, reed, string,
synth_lead, vocal) and sources (acoustic, electronic, synthetic). GM groups of eight map as a whole except
where an instrument clearly belongs elsewhere (accordions and harmonica are free reeds; synth voices are
vocal; pads and effects have no NSynth family of their own and are filed as synth_lead, which NSynth uses
for all sustained synthetic timbres). Percussive and sound-effect programs (112-127) are filed by how they
are excited (struck -> mallet) or by their nearest relative.
"""

from __future__ import annotations

__all__ = ["GM_PROGRAMS", "program_family"]

# (name, family, source) for programs 0..127
GM_PROGRAMS: tuple[tuple[str, str, str], ...] = (
    ("acoustic_grand_piano", "keyboard", "acoustic"), ("bright_acoustic_piano", "keyboard", "acoustic"),
    ("electric_grand_piano", "keyboard", "electronic"), ("honky_tonk_piano", "keyboard", "acoustic"),
    ("electric_piano_1", "keyboard", "electronic"), ("electric_piano_2", "keyboard", "electronic"),
    ("harpsichord", "keyboard", "acoustic"), ("clavinet", "keyboard", "electronic"),
    ("celesta", "mallet", "acoustic"), ("glockenspiel", "mallet", "acoustic"),
    ("music_box", "mallet", "acoustic"), ("vibraphone", "mallet", "acoustic"),
    ("marimba", "mallet", "acoustic"), ("xylophone", "mallet", "acoustic"),
    ("tubular_bells", "mallet", "acoustic"), ("dulcimer", "mallet", "acoustic"),
    ("drawbar_organ", "organ", "electronic"), ("percussive_organ", "organ", "electronic"),
    ("rock_organ", "organ", "electronic"), ("church_organ", "organ", "acoustic"),
    ("reed_organ", "organ", "acoustic"), ("accordion", "reed", "acoustic"),
    ("harmonica", "reed", "acoustic"), ("tango_accordion", "reed", "acoustic"),
    ("acoustic_guitar_nylon", "guitar", "acoustic"), ("acoustic_guitar_steel", "guitar", "acoustic"),
    ("electric_guitar_jazz", "guitar", "electronic"), ("electric_guitar_clean", "guitar", "electronic"),
    ("electric_guitar_muted", "guitar", "electronic"), ("overdriven_guitar", "guitar", "electronic"),
    ("distortion_guitar", "guitar", "electronic"), ("guitar_harmonics", "guitar", "electronic"),
    ("acoustic_bass", "bass", "acoustic"), ("electric_bass_finger", "bass", "electronic"),
    ("electric_bass_pick", "bass", "electronic"), ("fretless_bass", "bass", "electronic"),
    ("slap_bass_1", "bass", "electronic"), ("slap_bass_2", "bass", "electronic"),
    ("synth_bass_1", "bass", "synthetic"), ("synth_bass_2", "bass", "synthetic"),
    ("violin", "string", "acoustic"), ("viola", "string", "acoustic"),
    ("cello", "string", "acoustic"), ("contrabass", "string", "acoustic"),
    ("tremolo_strings", "string", "acoustic"), ("pizzicato_strings", "string", "acoustic"),
    ("orchestral_harp", "string", "acoustic"), ("timpani", "mallet", "acoustic"),
    ("string_ensemble_1", "string", "acoustic"), ("string_ensemble_2", "string", "acoustic"),
    ("synth_strings_1", "string", "synthetic"), ("synth_strings_2", "string", "synthetic"),
    ("choir_aahs", "vocal", "acoustic"), ("voice_oohs", "vocal", "acoustic"),
    ("synth_voice", "vocal", "synthetic"), ("orchestra_hit", "brass", "acoustic"),
    ("trumpet", "brass", "acoustic"), ("trombone", "brass", "acoustic"),
    ("tuba", "brass", "acoustic"), ("muted_trumpet", "brass", "acoustic"),
    ("french_horn", "brass", "acoustic"), ("brass_section", "brass", "acoustic"),
    ("synth_brass_1", "brass", "synthetic"), ("synth_brass_2", "brass", "synthetic"),
    ("soprano_sax", "reed", "acoustic"), ("alto_sax", "reed", "acoustic"),
    ("tenor_sax", "reed", "acoustic"), ("baritone_sax", "reed", "acoustic"),
    ("oboe", "reed", "acoustic"), ("english_horn", "reed", "acoustic"),
    ("bassoon", "reed", "acoustic"), ("clarinet", "reed", "acoustic"),
    ("piccolo", "flute", "acoustic"), ("flute", "flute", "acoustic"),
    ("recorder", "flute", "acoustic"), ("pan_flute", "flute", "acoustic"),
    ("blown_bottle", "flute", "acoustic"), ("shakuhachi", "flute", "acoustic"),
    ("whistle", "flute", "acoustic"), ("ocarina", "flute", "acoustic"),
    ("lead_square", "synth_lead", "synthetic"), ("lead_sawtooth", "synth_lead", "synthetic"),
    ("lead_calliope", "synth_lead", "synthetic"), ("lead_chiff", "synth_lead", "synthetic"),
    ("lead_charang", "synth_lead", "synthetic"), ("lead_voice", "synth_lead", "synthetic"),
    ("lead_fifths", "synth_lead", "synthetic"), ("lead_bass_lead", "synth_lead", "synthetic"),
    ("pad_new_age", "synth_lead", "synthetic"), ("pad_warm", "synth_lead", "synthetic"),
    ("pad_polysynth", "synth_lead", "synthetic"), ("pad_choir", "vocal", "synthetic"),
    ("pad_bowed", "synth_lead", "synthetic"), ("pad_metallic", "synth_lead", "synthetic"),
    ("pad_halo", "synth_lead", "synthetic"), ("pad_sweep", "synth_lead", "synthetic"),
    ("fx_rain", "synth_lead", "synthetic"), ("fx_soundtrack", "synth_lead", "synthetic"),
    ("fx_crystal", "synth_lead", "synthetic"), ("fx_atmosphere", "synth_lead", "synthetic"),
    ("fx_brightness", "synth_lead", "synthetic"), ("fx_goblins", "synth_lead", "synthetic"),
    ("fx_echoes", "synth_lead", "synthetic"), ("fx_sci_fi", "synth_lead", "synthetic"),
    ("sitar", "guitar", "acoustic"), ("banjo", "guitar", "acoustic"),
    ("shamisen", "guitar", "acoustic"), ("koto", "string", "acoustic"),
    ("kalimba", "mallet", "acoustic"), ("bagpipe", "reed", "acoustic"),
    ("fiddle", "string", "acoustic"), ("shanai", "reed", "acoustic"),
    ("tinkle_bell", "mallet", "acoustic"), ("agogo", "mallet", "acoustic"),
    ("steel_drums", "mallet", "acoustic"), ("woodblock", "mallet", "acoustic"),
    ("taiko_drum", "mallet", "acoustic"), ("melodic_tom", "mallet", "acoustic"),
    ("synth_drum", "mallet", "synthetic"), ("reverse_cymbal", "mallet", "synthetic"),
    ("guitar_fret_noise", "guitar", "acoustic"), ("breath_noise", "flute", "acoustic"),
    ("seashore", "synth_lead", "synthetic"), ("bird_tweet", "flute", "synthetic"),
    ("telephone_ring", "synth_lead", "electronic"), ("helicopter", "synth_lead", "synthetic"),
    ("applause", "vocal", "acoustic"), ("gunshot", "synth_lead", "synthetic"),
)

if len(GM_PROGRAMS) != 128:  # pragma: no cover - guards an edit of the table above
    raise RuntimeError(f"GM_PROGRAMS has {len(GM_PROGRAMS)} entries, expected 128")


def program_family(program: int) -> tuple[str, str]:
    """(family, source) of a GM program number 0..127."""
    _, family, source = GM_PROGRAMS[program]
    return family, source
