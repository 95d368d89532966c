"""The dashboard owns no models: it reads and controls the other apps through their
selectors and services. (This module exists so ``post_migrate`` is sent for the app.)"""
