namespace Loop.Store.Tests;

/// <summary>A clock the test moves by hand.</summary>
public sealed class ManualTime(DateTimeOffset start) : TimeProvider
{
    private DateTimeOffset _now = start;

    public override DateTimeOffset GetUtcNow() => _now;

    public void Advance(TimeSpan by) => _now += by;
}

/// <summary>A fresh directory with a database path in it, removed afterwards.</summary>
public sealed class TempDatabase : IDisposable
{
    public TempDatabase()
    {
        Root = Path.Combine(Path.GetTempPath(), "loop-store-tests", Guid.NewGuid().ToString("N"));
        // The store creates the database's directory itself, so it is not made here.
        DatabasePath = Path.Combine(Root, "state", "loop.db");
    }

    public string Root { get; }

    public string DatabasePath { get; }

    public void Dispose()
    {
        if (Directory.Exists(Root))
        {
            Directory.Delete(Root, recursive: true);
        }
    }
}
