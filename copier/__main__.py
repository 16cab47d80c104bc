from copier.cli import main

main()
