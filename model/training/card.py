"""Write resources/MODEL.md from the metrics of a finished training run."""


def write(path, m):
    with open(path, "w") as f:
        f.write("# placeholder\n")
