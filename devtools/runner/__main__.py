from devtools.runner.cli import main

raise SystemExit(main())
