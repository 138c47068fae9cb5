package driver

import "strings"

// ValidPath reports whether p is a valid file path: "/" followed by one or
// more components of [A-Za-z0-9._-]+ separated by single slashes, with no
// trailing slash. The root "/" is not a valid file path; see [ValidFolder].
func ValidPath(p string) bool {
	if len(p) < 2 || p[0] != '/' || p[len(p)-1] == '/' {
		return false
	}
	prevSlash := true
	for i := 1; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '/':
			if prevSlash {
				return false
			}
			prevSlash = true
		case ValidNameByte(c):
			prevSlash = false
		default:
			return false
		}
	}
	return true
}

// ValidFolder reports whether p is valid for Stat, List and Walk: a valid
// path, or the root "/".
func ValidFolder(p string) bool { return p == "/" || ValidPath(p) }

// ValidNameByte reports whether c may appear in a path component.
func ValidNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
}

// ValidName reports whether name is a valid path component. Backends use it
// to hide their own bookkeeping: any name with another byte (such as '~' or
// '#') can never be a driver path.
func ValidName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		if !ValidNameByte(name[i]) {
			return false
		}
	}
	return true
}

// Parent returns the folder that holds p: Parent("/a/b") is "/a", Parent("/a")
// is "/".
func Parent(p string) string {
	i := strings.LastIndexByte(p, '/')
	if i <= 0 {
		return "/"
	}
	return p[:i]
}

// Join joins a folder and a name: Join("/", "a") is "/a", Join("/a", "b") is
// "/a/b".
func Join(folder, name string) string {
	if folder == "/" {
		return "/" + name
	}
	return folder + "/" + name
}

// IsBelow reports whether p lies strictly below folder: IsBelow("/a/b", "/a")
// is true, IsBelow("/ab", "/a") is false, and every path is below "/".
func IsBelow(p, folder string) bool {
	if folder == "/" {
		return len(p) > 1
	}
	return len(p) > len(folder)+1 && p[len(folder)] == '/' && strings.HasPrefix(p, folder)
}

// WalkKey is the key by which Walk orders entries: the path, with a trailing
// slash for a folder.
func WalkKey(p string, isDir bool) string {
	if isDir {
		return p + "/"
	}
	return p
}
