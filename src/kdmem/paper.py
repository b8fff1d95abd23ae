"""The paper's reference numbers (docs/protocol.md "Headline numbers", "Overlaps"), keyed by what they
measure, in one place: the findings, the report and the tests read them from here and nowhere else.
Values are Pythia-12B -> 1.4B on FineWeb unless the text says otherwise."""

from __future__ import annotations

from kdmem.vocab import Label

# Memorization rate in % per role.
RATES = {Label.TEACHER: 0.33, Label.BASELINE: 0.17, Label.STUDENT: 0.07, Label.HARD_STUDENT: 0.07}

# What each finding's claim looks like in the paper, as the report's "paper" column prints it.
FINDINGS = {
    "F1": "0.17 % vs 0.07 % (2.4x)",
    "F2": "0.33 % vs 0.17 %",
    "F3": "95.7 % (70-96 % across settings)",
    "F4": "0.9 % (18 of 1,955)",
    "F5": "2.85 vs 2.87 (Pythia)",
    "F6": "0.9997 ± 0.0005",
    "F7": "99.8 % against the baseline (1,698 -> 4), 99.4 % against the student (706 -> 4)",
    "F8": "50 vs 18 of 1,955 (2.5 % vs 0.9 %)",
}

# Thresholds a verdict compares against, each the paper's own bound (see findings.py).
F3_LOWEST_SHARE = 0.70  # the lowest share of the student's set inside teacher ∩ baseline the paper reports (Qwen-3)
F4_HIGHEST_SHARE = 0.27  # the highest share of the teacher-only set a student inherits in the paper (Qwen-3)
F6_AUC = 0.90
F7_REDUCTION = 0.90

# The overlap quantities, in the paper's words and with its counts.
OVERLAPS = {
    Label.STUDENT: ("samples the student memorizes", "706"),
    Label.BASELINE: ("samples the baseline memorizes", "1,698"),
    Label.TEACHER: ("samples the teacher memorizes", "–"),
    "teacher_and_baseline": ("memorized by both the teacher and the baseline", "–"),
    "student_in_teacher_and_baseline": ("student-memorized samples also memorized by teacher and baseline", "676 of 706"),
    "share_student_in_teacher_and_baseline": ("share of the student's set inside teacher ∩ baseline", "95.7 %"),
    "teacher_only": ("memorized by the teacher and by no baseline seed (teacher-only)", "1,955"),
    "student_inherits_teacher_only": ("teacher-only samples the student memorizes (inherited)", "18"),
    "share_teacher_only_inherited": ("share of the teacher-only set the student inherits", "0.9 %"),
    "teacher_and_baseline_not_student": ("memorized by teacher and baseline, not by the student", "696"),
    "baseline_all_seeds_student_none": ("memorized by the baseline in every seed and by the student in none", "494"),
    "teacher_coverage_of_baseline": ("share of the baseline's set the teacher memorizes too", "~80 %"),
    Label.HARD_STUDENT: ("samples the hard student memorizes", "–"),
    "hard_inherits_teacher_only": ("teacher-only samples the hard student memorizes", "50"),
    "hard_in_teacher_and_baseline": ("hard-student-memorized samples inside teacher ∩ baseline", "–"),
    "share_hard_teacher_only_inherited": ("share of the teacher-only set the hard student inherits", "2.6 %"),
    "share_hard_in_teacher_and_baseline": ("share of the hard student's set inside teacher ∩ baseline", "~90 %"),
    "student_and_hard": ("memorized by both the soft and the hard student", "–"),
    "share_soft_also_hard": ("share of the soft student's set the hard student memorizes too", "~70 %"),
    "n_train": ("training samples in D", "1,000,000"),
}

CLASSIFIER = "AUC 0.9997 ± 0.0005, precision 0.992, recall 1.0; coefficients teacher ppl −0.33, baseline ppl −0.40, zlib −4.50, KL −1.06"
UTILITY = "teacher 2.75 / 15.66, baseline 2.87 / 17.69, student 2.85 / 17.31"
REMOVAL = "baseline 1,698 on D; student on the cleaned D 4, all new (the “privacy onion”)"
