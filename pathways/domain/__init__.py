"""Pure domain code: no database writes, no services. Imported by services and selectors alike.

- recurrence: when a schedule's occurrences fall (dateutil.rrule on the site's wall clock);
- units: canonical units, accepted spellings, conversions and plausibility of observations;
- applicability: whether a task template applies to a patient;
- conditions: rule conditions, one class per kind, validated by the content loader and evaluated by the engine.
"""
