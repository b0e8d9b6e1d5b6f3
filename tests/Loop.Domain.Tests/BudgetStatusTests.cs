namespace Loop.Domain.Tests;

using Loop.Domain.Budgets;

public sealed class BudgetStatusTests
{
    private static readonly DateTimeOffset At = new(2026, 12, 31, 23, 30, 0, TimeSpan.Zero);

    private static BudgetStatus Status(decimal? daily, decimal? monthly, decimal day, decimal month) =>
        new(new Budget(new BudgetKey(BudgetScope.Channel, "ch_1"), new BudgetLimits(daily, monthly), At), "general", day, month, At);

    [Fact]
    public void What_is_left_is_the_least_of_the_limits_and_never_below_zero()
    {
        Assert.Equal(2m, Status(5m, 50m, 3m, 10m).Remaining);
        Assert.Equal(1m, Status(5m, 11m, 3m, 10m).Remaining);
        Assert.Equal(40m, Status(null, 50m, 3m, 10m).Remaining);
        Assert.Equal(0m, Status(5m, null, 7m, 7m).Remaining);
        Assert.Null(Status(null, null, 7m, 7m).Remaining);
    }

    [Fact]
    public void A_budget_is_spent_when_a_limit_is_reached_and_the_month_wins_when_both_are()
    {
        Assert.Null(Status(5m, 50m, 4.99m, 10m).Exhausted);
        Assert.Equal(BudgetPeriod.Day, Status(5m, 50m, 5m, 10m).Exhausted);
        Assert.Equal(BudgetPeriod.Month, Status(5m, 10m, 5m, 10m).Exhausted);
        Assert.Equal(BudgetPeriod.Day, Status(0m, null, 0m, 0m).Exhausted);
    }

    [Fact]
    public void Days_and_months_reset_at_midnight_utc_across_a_year_end()
    {
        var status = Status(5m, 50m, 0m, 0m);
        Assert.Equal(new DateTimeOffset(2027, 1, 1, 0, 0, 0, TimeSpan.Zero), status.ResetsAt(BudgetPeriod.Day));
        Assert.Equal(new DateTimeOffset(2027, 1, 1, 0, 0, 0, TimeSpan.Zero), status.ResetsAt(BudgetPeriod.Month));
        var eastern = new DateTimeOffset(2027, 1, 1, 1, 0, 0, TimeSpan.FromHours(5)); // 20:00 UTC on the 31st
        Assert.Equal("2026-12-31", BudgetPeriods.Key(BudgetPeriod.Day, eastern));
        Assert.Equal("2026-12", BudgetPeriods.Key(BudgetPeriod.Month, eastern));
    }

    [Theory]
    [InlineData("5", "$5.00")]
    [InlineData("1234.5", "$1,234.50")]
    [InlineData("0.0042", "$0.0042")]
    [InlineData("0", "$0.00")]
    public void Dollars_read_as_people_write_them(string amount, string shown) =>
        Assert.Equal(shown, BudgetWire.Usd(decimal.Parse(amount, System.Globalization.CultureInfo.InvariantCulture)));
}
