package pubsub

import "encoding/json"

// Codec turns typed values into payloads and back. Implementations must be
// safe for concurrent use.
type Codec interface {
	// Encode returns the payload for v.
	Encode(v any) ([]byte, error)
	// Decode fills v, a pointer, from payload.
	Decode(payload []byte, v any) error
	// ContentType is the payload's media type, set as MetadataContentType.
	ContentType() string
}

// JSON is the default Codec: encoding/json, content type "application/json".
var JSON Codec = jsonCodec{}

type jsonCodec struct{}

func (jsonCodec) Encode(v any) ([]byte, error)       { return json.Marshal(v) }
func (jsonCodec) Decode(payload []byte, v any) error { return json.Unmarshal(payload, v) }
func (jsonCodec) ContentType() string                { return "application/json" }
