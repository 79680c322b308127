"""`podium compare`: one definition run in both modes under the same load, measured and
reported (`command` is the CLI's body; `runner` measures, `results` sums up, `report`
draws, `facts` derives what the numbers cannot say, `scope` keeps each mode apart)."""
