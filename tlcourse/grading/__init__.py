"""The instructor's pipeline: the course's notebooks as an nbgrader course.

``tlcourse grade ...`` runs four steps, each a module here, with nbgrader underneath
(install it with ``pip install -e ".[grading]"``)::

    tlcourse grade release   --course COURSE [--notebooks notebooks/]         # course.py
    tlcourse grade collect   --course COURSE --submissions SUBMISSIONS         # collect.py
    tlcourse grade autograde --course COURSE [--jobs 2] [--sandbox auto]       # autograde.py
    tlcourse grade export    --course COURSE --csv grades.csv --feedback FEEDBACK  # export.py

* :mod:`~tlcourse.grading.course` builds the nbgrader course folder: one assignment per
  notebook with exercises; the source version has the solutions and a hidden test per
  check cell; the student release looks exactly like the course notebook.
* :mod:`~tlcourse.grading.collect` copies ``SUBMISSIONS/<student>/<assignment>.ipynb``
  into nbgrader's ``submitted/`` layout, never touching the originals.
* :mod:`~tlcourse.grading.autograde` grades each submission in a throw-away copy of the
  course, with nbgrader in a long-lived :mod:`~tlcourse.grading.worker` process and the
  kernel in the :mod:`~tlcourse.grading.sandbox`; a check cell scores only if it passed
  *and* the grader's own verdict on the recorded answer is "correct"
  (:mod:`~tlcourse.grading.answers`), so a notebook that patches the checker gains nothing.
* :mod:`~tlcourse.grading.export` writes the gradebook CSV (student, notebook, question,
  points, max_points) and nbgrader's per-student feedback pages.

Importing this package imports neither nbgrader nor any framework.
"""
