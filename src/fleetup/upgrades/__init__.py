"""Every SOP instance the server runs: above all one machine's upgrade (chart 2 with chart 3's
budgets and checks), and the problem, satisfaction and emergency instances linked to it."""
