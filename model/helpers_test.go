package model

// repoRoot is the repository root seen from model/, where tests run.
const repoRoot = ".."
