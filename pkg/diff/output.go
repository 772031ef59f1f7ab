package diff

// Document is the stable -o json form; the text forms (a unified diff, a
// summary) are the printer's, from the same document.
type Document struct {
	Differs bool           `json:"differs"`
	Summary map[Action]int `json:"summary"`
	Objects []Object       `json:"objects"`
}

// JSON returns the stable document for r.
func JSON(r *Result) Document {
	c := r.Counts()
	sum := map[Action]int{}
	for _, a := range []Action{Created, Changed, Unchanged, Pruned, Skipped, Failed} {
		sum[a] = c[a]
	}
	objs := r.Objects
	if objs == nil {
		objs = []Object{}
	}
	return Document{Differs: r.Differs(), Summary: sum, Objects: objs}
}
