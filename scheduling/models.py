# Scheduled reviews arrive with the scheduling issue; the app exists so its label is stable.
