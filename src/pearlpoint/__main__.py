from pearlpoint.cli import main

main()
