package gcppubsub

// Resource IDs, for tests that look at the emulator's resources.
var (
	TopicID      = topicID
	GroupID      = groupID
	DeadLetterID = deadLetterID
	GroupFilter  = groupFilter
)
