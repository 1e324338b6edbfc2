// The CNI plugin entry (filled in by the plugin work).
export {};
