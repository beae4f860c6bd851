// The shared rules, on their own; each service's tests check them again through HTTP.
import t from 'tap'
import { hasControlCharacter, MAX_USER_ID_LENGTH, tooLongUserId, validSubject, wellFormedRequestId } from 'identity-rules'

t.test('validSubject: non-empty, at most 255 code points, no control character, no lone surrogate, no outer whitespace', async (t) => {
  for (const good of ['alice', 'a'.repeat(MAX_USER_ID_LENGTH), '😀'.repeat(MAX_USER_ID_LENGTH), 'zoë', 'a b']) {
    t.ok(validSubject(good), JSON.stringify(good).slice(0, 40))
  }
  for (const bad of [undefined, null, 42, {}, '', 'a'.repeat(256), '😀'.repeat(256), 'a\u0000', 'a\nb', 'a\u007f', 'a\u009f', 'alice\ud800', 'alice\udfff', ' alice', 'alice ', '\talice']) {
    t.notOk(validSubject(bad), JSON.stringify(bad)?.slice(0, 40) ?? String(bad))
  }
})

t.test('the parts the task service words its own errors with', async (t) => {
  t.ok(hasControlCharacter('a\u0001'))
  t.notOk(hasControlCharacter('a\u00a0'), 'U+00A0 is not a control character')
  t.notOk(tooLongUserId('😀'.repeat(255)), '255 code points in 510 UTF-16 units')
  t.ok(tooLongUserId('a'.repeat(256)))
})

t.test('wellFormedRequestId: 1–128 of [A-Za-z0-9._:-]', async (t) => {
  for (const good of ['a', 'req-1', 'A.b_c:d-9', 'x'.repeat(128)]) t.ok(wellFormedRequestId(good), good.slice(0, 40))
  for (const bad of [undefined, 1, '', 'x'.repeat(129), 'a b', 'a/b', 'a\nb', 'ä']) t.notOk(wellFormedRequestId(bad), String(bad).slice(0, 40))
})
