from copier.cli import main

# Guarded: worker processes import the parent's main module under another name.
if __name__ == "__main__":
    main()
