package memory

// deque is a double-ended queue on a ring buffer. The zero value is empty.
// It is not safe for concurrent use.
type deque[T any] struct {
	buf  []T
	head int
	n    int
}

func (d *deque[T]) Len() int { return d.n }

func (d *deque[T]) grow() {
	if d.n < len(d.buf) {
		return
	}
	buf := make([]T, max(16, 2*len(d.buf)))
	for i := range d.n {
		buf[i] = d.buf[(d.head+i)%len(d.buf)]
	}
	d.buf, d.head = buf, 0
}

// PushBack appends v.
func (d *deque[T]) PushBack(v T) {
	d.grow()
	d.buf[(d.head+d.n)%len(d.buf)] = v
	d.n++
}

// PushFront prepends v.
func (d *deque[T]) PushFront(v T) {
	d.grow()
	d.head = (d.head - 1 + len(d.buf)) % len(d.buf)
	d.buf[d.head] = v
	d.n++
}

// PopFront removes and returns the first element; ok is false when empty.
func (d *deque[T]) PopFront() (v T, ok bool) {
	if d.n == 0 {
		return v, false
	}
	var zero T
	v, d.buf[d.head] = d.buf[d.head], zero
	d.head = (d.head + 1) % len(d.buf)
	d.n--
	return v, true
}

// At returns the i-th element from the front; i must be in [0, Len()).
func (d *deque[T]) At(i int) T { return d.buf[(d.head+i)%len(d.buf)] }
