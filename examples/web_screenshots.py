"""Pictures of the page `melsynth serve --web` serves, for docs/: synth.web.screenshots' command line."""

import sys

from synth.web.screenshots import main

if __name__ == "__main__":
    sys.exit(main())
