{
 "patcher": {
  "fileversion": 1,
  "appversion": {
   "major": 8,
   "minor": 5,
   "revision": 0,
   "architecture": "x64",
   "modernui": 1
  },
  "classnamespace": "box",
  "rect": [
   40,
   80,
   900,
   700
  ],
  "gridsize": [
   15.0,
   15.0
  ],
  "boxes": [
   {
    "box": {
     "id": "obj-1",
     "maxclass": "comment",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      20,
      10,
      600,
      20
     ],
     "text": "melsynth: play the engine over OSC (melsynth serve listens on 127.0.0.1:9137)"
    }
   },
   {
    "box": {
     "id": "obj-2",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      20,
      640,
      170,
      22
     ],
     "text": "udpsend 127.0.0.1 9137"
    }
   },
   {
    "box": {
     "id": "obj-3",
     "maxclass": "comment",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      20,
      40,
      420,
      20
     ],
     "text": "notes: the keyboard sends /synth/note/on note velocity (velocity 0 on release = note off)"
    }
   },
   {
    "box": {
     "id": "obj-4",
     "maxclass": "kslider",
     "numinlets": 2,
     "numoutlets": 2,
     "patching_rect": [
      20,
      65,
      336,
      53
     ],
     "outlettype": [
      "int",
      "int"
     ],
     "mode": 1
    }
   },
   {
    "box": {
     "id": "obj-5",
     "maxclass": "newobj",
     "numinlets": 2,
     "numoutlets": 1,
     "patching_rect": [
      20,
      130,
      72,
      22
     ],
     "outlettype": [
      ""
     ],
     "text": "pack 0 0"
    }
   },
   {
    "box": {
     "id": "obj-6",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 1,
     "patching_rect": [
      20,
      155,
      170,
      22
     ],
     "outlettype": [
      ""
     ],
     "text": "prepend /synth/note/on"
    }
   },
   {
    "box": {
     "id": "obj-7",
     "maxclass": "comment",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      20,
      195,
      420,
      20
     ],
     "text": "presets (the names of your bundle's presets: /synth/info lists them)"
    }
   },
   {
    "box": {
     "id": "obj-8",
     "maxclass": "umenu",
     "numinlets": 1,
     "numoutlets": 3,
     "patching_rect": [
      20,
      220,
      120,
      22
     ],
     "outlettype": [
      "int",
      "",
      ""
     ],
     "items": [
      "bright",
      ",",
      "dark",
      ",",
      "hollow",
      ",",
      "soft"
     ]
    }
   },
   {
    "box": {
     "id": "obj-9",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 1,
     "patching_rect": [
      20,
      250,
      163,
      22
     ],
     "outlettype": [
      ""
     ],
     "text": "prepend /synth/preset"
    }
   },
   {
    "box": {
     "id": "obj-10",
     "maxclass": "comment",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      20,
      290,
      420,
      20
     ],
     "text": "XY pad: blend the four corner presets"
    }
   },
   {
    "box": {
     "id": "obj-11",
     "maxclass": "message",
     "numinlets": 2,
     "numoutlets": 1,
     "patching_rect": [
      20,
      315,
      282,
      22
     ],
     "outlettype": [
      ""
     ],
     "text": "/synth/corners bright dark hollow soft"
    }
   },
   {
    "box": {
     "id": "obj-12",
     "maxclass": "pictslider",
     "numinlets": 2,
     "numoutlets": 2,
     "patching_rect": [
      20,
      345,
      120,
      120
     ],
     "outlettype": [
      "int",
      "int"
     ]
    }
   },
   {
    "box": {
     "id": "obj-13",
     "maxclass": "newobj",
     "numinlets": 6,
     "numoutlets": 1,
     "patching_rect": [
      20,
      475,
      135,
      22
     ],
     "outlettype": [
      ""
     ],
     "text": "scale 0 127 0. 1."
    }
   },
   {
    "box": {
     "id": "obj-14",
     "maxclass": "newobj",
     "numinlets": 6,
     "numoutlets": 1,
     "patching_rect": [
      160,
      475,
      135,
      22
     ],
     "outlettype": [
      ""
     ],
     "text": "scale 0 127 1. 0."
    }
   },
   {
    "box": {
     "id": "obj-15",
     "maxclass": "newobj",
     "numinlets": 2,
     "numoutlets": 1,
     "patching_rect": [
      20,
      500,
      79,
      22
     ],
     "outlettype": [
      ""
     ],
     "text": "pak 0. 0."
    }
   },
   {
    "box": {
     "id": "obj-16",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 1,
     "patching_rect": [
      20,
      525,
      135,
      22
     ],
     "outlettype": [
      ""
     ],
     "text": "prepend /synth/xy"
    }
   },
   {
    "box": {
     "id": "obj-17",
     "maxclass": "comment",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      400,
      195,
      420,
      20
     ],
     "text": "macros: principal directions, in standard deviations (-3..3)"
    }
   },
   {
    "box": {
     "id": "obj-18",
     "maxclass": "slider",
     "numinlets": 1,
     "numoutlets": 1,
     "patching_rect": [
      400,
      220,
      20,
      140
     ],
     "outlettype": [
      ""
     ],
     "floatoutput": 1,
     "min": -3.0,
     "size": 6.0
    }
   },
   {
    "box": {
     "id": "obj-19",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 1,
     "patching_rect": [
      400,
      370,
      170,
      22
     ],
     "outlettype": [
      ""
     ],
     "text": "prepend /synth/macro 0"
    }
   },
   {
    "box": {
     "id": "obj-20",
     "maxclass": "slider",
     "numinlets": 1,
     "numoutlets": 1,
     "patching_rect": [
      450,
      220,
      20,
      140
     ],
     "outlettype": [
      ""
     ],
     "floatoutput": 1,
     "min": -3.0,
     "size": 6.0
    }
   },
   {
    "box": {
     "id": "obj-21",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 1,
     "patching_rect": [
      450,
      395,
      170,
      22
     ],
     "outlettype": [
      ""
     ],
     "text": "prepend /synth/macro 1"
    }
   },
   {
    "box": {
     "id": "obj-22",
     "maxclass": "slider",
     "numinlets": 1,
     "numoutlets": 1,
     "patching_rect": [
      500,
      220,
      20,
      140
     ],
     "outlettype": [
      ""
     ],
     "floatoutput": 1,
     "min": -3.0,
     "size": 6.0
    }
   },
   {
    "box": {
     "id": "obj-23",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 1,
     "patching_rect": [
      500,
      370,
      170,
      22
     ],
     "outlettype": [
      ""
     ],
     "text": "prepend /synth/macro 2"
    }
   },
   {
    "box": {
     "id": "obj-24",
     "maxclass": "slider",
     "numinlets": 1,
     "numoutlets": 1,
     "patching_rect": [
      550,
      220,
      20,
      140
     ],
     "outlettype": [
      ""
     ],
     "floatoutput": 1,
     "min": -3.0,
     "size": 6.0
    }
   },
   {
    "box": {
     "id": "obj-25",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 1,
     "patching_rect": [
      550,
      395,
      170,
      22
     ],
     "outlettype": [
      ""
     ],
     "text": "prepend /synth/macro 3"
    }
   },
   {
    "box": {
     "id": "obj-26",
     "maxclass": "comment",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      400,
      430,
      420,
      20
     ],
     "text": "method, gain, panic, status"
    }
   },
   {
    "box": {
     "id": "obj-27",
     "maxclass": "message",
     "numinlets": 2,
     "numoutlets": 1,
     "patching_rect": [
      400,
      455,
      184,
      22
     ],
     "outlettype": [
      ""
     ],
     "text": "/synth/method sinusoidal"
    }
   },
   {
    "box": {
     "id": "obj-28",
     "maxclass": "message",
     "numinlets": 2,
     "numoutlets": 1,
     "patching_rect": [
      590,
      455,
      184,
      22
     ],
     "outlettype": [
      ""
     ],
     "text": "/synth/method griffinlim"
    }
   },
   {
    "box": {
     "id": "obj-29",
     "maxclass": "flonum",
     "numinlets": 1,
     "numoutlets": 2,
     "patching_rect": [
      400,
      490,
      60,
      22
     ],
     "outlettype": [
      "",
      "bang"
     ],
     "minimum": 0.0,
     "maximum": 4.0
    }
   },
   {
    "box": {
     "id": "obj-30",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 1,
     "patching_rect": [
      470,
      490,
      149,
      22
     ],
     "outlettype": [
      ""
     ],
     "text": "prepend /synth/gain"
    }
   },
   {
    "box": {
     "id": "obj-31",
     "maxclass": "message",
     "numinlets": 2,
     "numoutlets": 1,
     "patching_rect": [
      400,
      525,
      100,
      22
     ],
     "outlettype": [
      ""
     ],
     "text": "/synth/panic"
    }
   },
   {
    "box": {
     "id": "obj-32",
     "maxclass": "message",
     "numinlets": 2,
     "numoutlets": 1,
     "patching_rect": [
      510,
      525,
      107,
      22
     ],
     "outlettype": [
      ""
     ],
     "text": "/synth/status"
    }
   },
   {
    "box": {
     "id": "obj-33",
     "maxclass": "message",
     "numinlets": 2,
     "numoutlets": 1,
     "patching_rect": [
      620,
      525,
      93,
      22
     ],
     "outlettype": [
      ""
     ],
     "text": "/synth/info"
    }
   },
   {
    "box": {
     "id": "obj-34",
     "maxclass": "comment",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      400,
      560,
      420,
      20
     ],
     "text": "replies go back to the sender's port: watch them with oscdump or a udpreceive on a fixed port"
    }
   }
  ],
  "lines": [
   {
    "patchline": {
     "source": [
      "obj-4",
      0
     ],
     "destination": [
      "obj-5",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-4",
      1
     ],
     "destination": [
      "obj-5",
      1
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-5",
      0
     ],
     "destination": [
      "obj-6",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-6",
      0
     ],
     "destination": [
      "obj-2",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-8",
      1
     ],
     "destination": [
      "obj-9",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-9",
      0
     ],
     "destination": [
      "obj-2",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-11",
      0
     ],
     "destination": [
      "obj-2",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-12",
      0
     ],
     "destination": [
      "obj-13",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-12",
      1
     ],
     "destination": [
      "obj-14",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-13",
      0
     ],
     "destination": [
      "obj-15",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-14",
      0
     ],
     "destination": [
      "obj-15",
      1
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-15",
      0
     ],
     "destination": [
      "obj-16",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-16",
      0
     ],
     "destination": [
      "obj-2",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-18",
      0
     ],
     "destination": [
      "obj-19",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-19",
      0
     ],
     "destination": [
      "obj-2",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-20",
      0
     ],
     "destination": [
      "obj-21",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-21",
      0
     ],
     "destination": [
      "obj-2",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-22",
      0
     ],
     "destination": [
      "obj-23",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-23",
      0
     ],
     "destination": [
      "obj-2",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-24",
      0
     ],
     "destination": [
      "obj-25",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-25",
      0
     ],
     "destination": [
      "obj-2",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-27",
      0
     ],
     "destination": [
      "obj-2",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-28",
      0
     ],
     "destination": [
      "obj-2",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-29",
      0
     ],
     "destination": [
      "obj-30",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-30",
      0
     ],
     "destination": [
      "obj-2",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-31",
      0
     ],
     "destination": [
      "obj-2",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-32",
      0
     ],
     "destination": [
      "obj-2",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-33",
      0
     ],
     "destination": [
      "obj-2",
      0
     ]
    }
   }
  ]
 }
}