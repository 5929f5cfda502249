import sys

from tunechat.cli import main

sys.exit(main())
