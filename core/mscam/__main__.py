from mscam.cli import main

raise SystemExit(main())
