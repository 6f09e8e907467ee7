// module Transport
