"""The control vocabulary: the engine's commands, what each accepts, the table every transport walks.

:mod:`.messages` holds the message types, :mod:`.arguments` the kinds of argument, :mod:`.vocabulary` the one
table of addresses, :mod:`.spec` what one engine accepts, :mod:`.targets` what a MIDI controller can move and
:mod:`.router` the transport-free handling of one message, shared by OSC and the page.
"""
