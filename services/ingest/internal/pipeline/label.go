package pipeline

import "bytes"

func containsType(b []byte, t string) bool {
	return bytes.Contains(b, []byte(`"`+t+`"`))
}
