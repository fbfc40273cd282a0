import Foundation
@testable import Phylactery
import Testing

@Suite struct CronScheduleTests {
    let utc: Calendar = {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return calendar
    }()

    func date(_ y: Int, _ m: Int, _ d: Int, _ h: Int = 0, _ min: Int = 0, _ s: Int = 0) -> Date {
        utc.date(from: DateComponents(year: y, month: m, day: d, hour: h, minute: min, second: s))!
    }

    @Test func latestFireInAWindow() throws {
        let now = date(2026, 11, 27, 3, 40, 10)
        let daily = PeriodicSchedule.cron(try CronSchedule("30 3 * * *"))
        #expect(daily.latestFire(in: date(2026, 11, 26, 4)...now) == date(2026, 11, 27, 3, 30))
        #expect(daily.latestFire(in: date(2026, 11, 27, 3, 31)...now) == nil)
        // The window's ends are included.
        #expect(daily.latestFire(in: date(2026, 11, 27, 3, 30)...date(2026, 11, 27, 3, 30)) == date(2026, 11, 27, 3, 30))
        let quarterly = PeriodicSchedule.cron(try CronSchedule("*/15 * * * *"))
        #expect(quarterly.latestFire(in: date(2026, 11, 26)...now) == date(2026, 11, 27, 3, 30))
        let hourly = PeriodicSchedule.every(.seconds(3600))
        #expect(hourly.latestFire(in: date(2026, 11, 27, 1)...now) == date(2026, 11, 27, 3))
        #expect(hourly.latestFire(in: date(2026, 11, 27, 3, 0, 1)...now) == nil)
    }

    @Test func nextFireTimes() throws {
        let start = date(2026, 11, 26, 21, 32, 15)  // a Thursday
        #expect(try CronSchedule("* * * * *").next(after: start) == date(2026, 11, 26, 21, 33))
        #expect(try CronSchedule("*/15 * * * *").next(after: start) == date(2026, 11, 26, 21, 45))
        #expect(try CronSchedule("30 3 * * *").next(after: start) == date(2026, 11, 27, 3, 30))
        #expect(try CronSchedule("0 9 * * 1-5").next(after: date(2026, 11, 27, 10)) == date(2026, 11, 30, 9))  // Friday → Monday
        #expect(try CronSchedule("0 0 1 1 *").next(after: start) == date(2027, 1, 1))
        #expect(try CronSchedule("@hourly").next(after: start) == date(2026, 11, 26, 22))
        #expect(try CronSchedule("0 12 29 2 *").next(after: start) == date(2028, 2, 29, 12))  // leap day
        #expect(try CronSchedule("0 0 31 2 *").next(after: start) == nil)  // never
        // Both day fields restricted: either matches (the 1st of the month, or any Sunday).
        #expect(try CronSchedule("0 0 1 * 0").next(after: start) == date(2026, 11, 29))
        // Exactly on a fire time: the next one, not the same.
        #expect(try CronSchedule("33 21 * * *").next(after: date(2026, 11, 26, 21, 33)) == date(2026, 11, 27, 21, 33))
    }

    @Test func malformedExpressionsAreRefused() {
        for expression in ["", "* * * *", "60 * * * *", "* 24 * * *", "* * 0 * *", "*/0 * * * *", "a * * * *", "5-1 * * * *", "* * * 13 *", "1,,2 * * * *"] {
            let error = #expect(throws: PhylacteryError.self, "\(expression)") { try CronSchedule(expression) }
            #expect(error?.code == .invalidArgument)
        }
    }

    @Test func intervalsAlignToTheEpoch() {
        let schedule = PeriodicSchedule.every(.seconds(10))
        #expect(schedule.next(after: Date(timeIntervalSince1970: 1_000_003)) == Date(timeIntervalSince1970: 1_000_010))
        #expect(schedule.next(after: Date(timeIntervalSince1970: 1_000_010)) == Date(timeIntervalSince1970: 1_000_020))
    }

    @Test func backoffGrowsAndIsCapped() {
        let backoff = RetryBackoff(initial: .seconds(2), multiplier: 2, maximum: .seconds(60), jitter: 0.25)
        #expect(backoff.delay(afterAttempt: 1, random: 0.5) == 2)
        #expect(backoff.delay(afterAttempt: 3, random: 0.5) == 8)
        #expect(backoff.delay(afterAttempt: 30, random: 0.5) == 60)
        #expect(backoff.delay(afterAttempt: 1, random: 0) == 1.5)
        #expect(backoff.delay(afterAttempt: 1, random: 1) == 2.5)
    }

    @Test func badWorkerSettingsAreRefused() async throws {
        let client = PhylacteryClient(configuration: try .init(url: "postgres://nobody@/nothing?host=/nonexistent"))
        for configuration in [
            GhoulsConfiguration(queues: [:]),
            GhoulsConfiguration(queues: ["default": QueueConfiguration(concurrency: 0)]),
            GhoulsConfiguration(lease: .seconds(1), heartbeatInterval: .seconds(2)),
            GhoulsConfiguration(queues: ["default": QueueConfiguration(rateLimit: QueueRateLimit(jobs: 0, per: .seconds(1)))]),
        ] {
            let error = await #expect(throws: PhylacteryError.self) { try await Ghouls(client: client, handlers: JobHandlers(), configuration: configuration).run() }
            #expect(error?.code == .invalidArgument)
        }
    }
}

/// The periodic leader's step after a sleep or a clock jump: never a burst of missed fires.
@Suite struct PeriodicStepTests {
    let start = Date(timeIntervalSince1970: 1_800_000_000 - 1_800_000_000.truncatingRemainder(dividingBy: 3600))   // a whole hour

    struct Tick: Job { static let kind = "test.tick" }

    func hourly(catchUp: Duration? = nil) -> PeriodicJob {
        PeriodicJob(name: "tick", schedule: .every(.seconds(3600)), catchUp: catchUp) { Tick() }
    }

    @Test func anOnTimeFireIsEnqueuedAndTheNextPlanned() {
        let step = PeriodicScheduler.step(hourly(), planned: start, now: start.addingTimeInterval(2))
        #expect(step.fire == start && !step.caughtUp)
        #expect(step.next == start.addingTimeInterval(3600))
        let early = PeriodicScheduler.step(hourly(), planned: start, now: start.addingTimeInterval(-1))
        #expect(early.fire == nil && early.next == start)
    }

    @Test func afterASleepMissedFiresAreSkippedNotBurst() {
        // Asleep for ten and a half hours: eleven fires passed, none of them on time.
        let now = start.addingTimeInterval(10.5 * 3600)
        let step = PeriodicScheduler.step(hourly(), planned: start, now: now)
        #expect(step.fire == nil)
        #expect(step.next == start.addingTimeInterval(11 * 3600))
    }

    @Test func theCatchUpWindowAllowsOnlyTheLatestMissedFire() {
        let now = start.addingTimeInterval(10.5 * 3600)
        let caught = PeriodicScheduler.step(hourly(catchUp: .seconds(3600)), planned: start, now: now)
        #expect(caught.caughtUp)
        #expect(caught.fire == start.addingTimeInterval(10 * 3600), "the latest missed fire, once")
        #expect(caught.next == start.addingTimeInterval(11 * 3600))
        // Outside the window: nothing.
        let tooLate = PeriodicScheduler.step(hourly(catchUp: .seconds(600)), planned: start, now: now)
        #expect(tooLate.fire == nil)
    }

    @Test func theLatestFireIsOnTimeWhenItJustPassed() {
        // Ten hours asleep, woken 30 s after a fire: that fire runs, the ten before it do not.
        let now = start.addingTimeInterval(10 * 3600 + 30)
        let step = PeriodicScheduler.step(hourly(), planned: start, now: now)
        #expect(step.fire == start.addingTimeInterval(10 * 3600) && !step.caughtUp)
    }

    @Test func aClockThatJumpsBackPlansFromTheStoredFire() {
        let step = PeriodicScheduler.step(hourly(), planned: start, now: start.addingTimeInterval(-3600))
        #expect(step.fire == nil && step.next == start)
    }
}
