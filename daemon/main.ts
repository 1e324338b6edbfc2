// The node daemon entry (filled in by the registration API work).
export {};
