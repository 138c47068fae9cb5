package driver

// As gives access to what a backend is built on (its service client), the
// escape hatch for what the Driver interface does not cover: it finds d's
// Backend below any decorators (as [BackendOf] does) and, when the backend
// implements interface{ As(target any) bool }, lets it set target, a
// pointer to one of the types the backend's package doc lists (such as a
// **storage.BucketHandle for gcs, or a *KeyPrefix). It reports whether
// target was set. What is reached this way bypasses the shared layer: path
// checks, error kinds, upload state and decorators do not apply to it.
func As(d Driver, target any) bool {
	b := BackendOf(d)
	if b == nil || target == nil {
		return false
	}
	a, ok := b.(interface{ As(target any) bool })
	return ok && a.As(target)
}

// KeyPrefix is the object name prefix a backend's root directory maps to on
// an object store: "" for the bucket's top, otherwise "dir/". The path
// /a/b of the Driver is the object KeyPrefix+"a/b". Backends on object
// stores set a *KeyPrefix target in [As].
type KeyPrefix string
