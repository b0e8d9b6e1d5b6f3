namespace Loop.Runtime;

/// <summary>The daemon's state as an operator sees it; cheap to make (no I/O).</summary>
public sealed record HealthReport(
    string Status,
    string Version,
    string Node,
    int Pid,
    double UptimeSeconds,
    string Runner,
    StoreHealth Store,
    EngineHealth Engine,
    QueueHealth Queue,
    int ActiveChannels,
    IReadOnlyList<ChatHealth> Chats,
    IReadOnlyList<string> Warnings,
    IReadOnlyList<LoopEvent> RecentProblems);

public sealed record StoreHealth(bool Ok, string Kind, string Location, string? Error);

public sealed record EngineHealth(bool Reachable, string Endpoint, string? ApiVersion, string? Error, string Image, string ImageStatus);

public sealed record QueueHealth(int Capacity, int Running, int Waiting);

public sealed record ChatHealth(string Platform, string Status);
