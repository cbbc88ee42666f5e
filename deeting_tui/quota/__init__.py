"""What a plugin's processes use (CPU, memory, disk) and the watchdog holding them to limits."""
