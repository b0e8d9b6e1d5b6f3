namespace Loop.Domain.Tasks;

/// <summary>A schedule, time zone or instant that cannot be used. <see cref="Field"/> names the
/// request field; the message says what is wrong and gives a valid example.</summary>
public sealed class ScheduleFormatException(string field, string message) : Exception(message)
{
    public string Field { get; } = field;
}
