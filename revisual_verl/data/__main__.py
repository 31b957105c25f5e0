from revisual_verl.data.cli import main

raise SystemExit(main())
