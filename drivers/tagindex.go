package drivers

import (
	"cmp"
	"slices"
	"strings"
)

// TagIndex finds a device's tags by name: the indexes of its []TagInfo sorted by name, 4 bytes
// a tag where a map costs some 40. Among tags of the same name the last one comes first, and
// is the one Find returns. The index is built for one slice of tags and used only with it.
type TagIndex []int32

// NewTagIndex indexes tags by name.
func NewTagIndex(tags []TagInfo) TagIndex {
	x := make(TagIndex, len(tags))
	for i := range x {
		x[i] = int32(i)
	}
	slices.SortFunc(x, func(a, b int32) int {
		return cmp.Or(strings.Compare(tags[a].Name, tags[b].Name), cmp.Compare(b, a))
	})
	return x
}

// Find returns the index in tags (the slice x was built for) of the tag named name, or -1.
func (x TagIndex) Find(tags []TagInfo, name string) int {
	k, found := slices.BinarySearchFunc(x, name, func(i int32, name string) int {
		return strings.Compare(tags[i].Name, name)
	})
	if !found {
		return -1
	}
	return int(x[k])
}
